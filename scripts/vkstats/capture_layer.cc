// VK_LAYER_SDPA_capture: a Vulkan layer that writes every SPIR-V module an application (Dawn)
// hands to the driver to $SDPA_VKCAPTURE_DIR/NNNN.spv, so vkstats can rebuild the pipeline.
// With SDPA_VKCAPTURE_STATS=1 it also asks the driver for VK_KHR_pipeline_executable_properties
// on the application's own device and compute pipelines, and writes each pipeline's statistics
// to NNNN.stats.txt and its pipeline-cache blob (and the ELF images in it) beside the module: the
// figures of exactly the pipeline Dawn dispatches, with Dawn's features and flags.
//
// Enable: VK_LAYER_PATH=<dir of VkLayer_sdpa_capture.json> VK_INSTANCE_LAYERS=VK_LAYER_SDPA_capture
// (VK_LOADER_LAYERS_ENABLE for newer loaders).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"

using namespace vkm;

namespace {

struct InstanceData {
  Instance instance;
  PFN_GetInstanceProcAddr next;
};
struct DeviceData {
  PFN_GetDeviceProcAddr next;
  PFN_CreateShaderModule createShaderModule;
  PFN_CreateComputePipelines createComputePipelines;
  PFN_CreatePipelineCache createCache;
  PFN_DestroyPipelineCache destroyCache;
  vks::StatFns fns;
  bool stats;
};

std::mutex mu;
std::map<void*, InstanceData> instances;  // by dispatch key (shared with the instance's physical devices)
std::map<void*, DeviceData> devices;
std::map<ShaderModule, int> moduleIndex;
int counter = 0;

void* key(const void* handle) { return *static_cast<void* const*>(handle); }

std::string dir() {
  const char* d = std::getenv("SDPA_VKCAPTURE_DIR");
  return d && *d ? d : ".";
}
bool statsWanted() {
  const char* s = std::getenv("SDPA_VKCAPTURE_STATS");
  return s && std::strcmp(s, "1") == 0;
}
std::string tagOf(int n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d", n);
  return buf;
}

// Writes one module; returns its index (the file's number).
int dumpModule(const ShaderModuleCreateInfo* ci) {
  int n;
  {
    std::lock_guard<std::mutex> g(mu);
    n = counter++;
  }
  vks::writeFile(dir() + "/" + tagOf(n) + ".spv", ci->pCode, ci->codeSize);
  return n;
}

const void* findInChain(const void* pNext, StructureType t) {
  struct Base { StructureType sType; const void* pNext; };
  for (auto* p = static_cast<const Base*>(pNext); p; p = static_cast<const Base*>(p->pNext))
    if (p->sType == t) return p;
  return nullptr;
}

Result CreateInstance(const InstanceCreateInfo* ci, const void* alloc, Instance* out) {
  auto* link = static_cast<LayerInstanceCreateInfo*>(const_cast<void*>(findInChain(ci->pNext, st::LOADER_INSTANCE_CREATE_INFO)));
  while (link && link->function != LAYER_LINK_INFO) link = static_cast<LayerInstanceCreateInfo*>(const_cast<void*>(findInChain(link->pNext, st::LOADER_INSTANCE_CREATE_INFO)));
  if (!link) return -3;  // VK_ERROR_INITIALIZATION_FAILED
  PFN_GetInstanceProcAddr next = link->u.pLayerInfo->pfnNextGetInstanceProcAddr;
  link->u.pLayerInfo = link->u.pLayerInfo->pNext;
  auto create = reinterpret_cast<PFN_CreateInstance>(next(nullptr, "vkCreateInstance"));
  Result r = create(ci, alloc, out);
  if (r == SUCCESS) {
    std::lock_guard<std::mutex> g(mu);
    instances[key(*out)] = {*out, next};
  }
  return r;
}

Result CreateDevice(PhysicalDevice pd, const DeviceCreateInfo* ci, const void* alloc, Device* out) {
  auto* link = static_cast<LayerDeviceCreateInfo*>(const_cast<void*>(findInChain(ci->pNext, st::LOADER_DEVICE_CREATE_INFO)));
  while (link && link->function != LAYER_LINK_INFO) link = static_cast<LayerDeviceCreateInfo*>(const_cast<void*>(findInChain(link->pNext, st::LOADER_DEVICE_CREATE_INFO)));
  if (!link) return -3;
  PFN_GetInstanceProcAddr ngipa = link->u.pLayerInfo->pfnNextGetInstanceProcAddr;
  PFN_GetDeviceProcAddr ngdpa = link->u.pLayerInfo->pfnNextGetDeviceProcAddr;
  link->u.pLayerInfo = link->u.pLayerInfo->pNext;
  InstanceData inst{};
  {
    std::lock_guard<std::mutex> g(mu);
    inst = instances[key(pd)];
  }
  // Statistics: add the extension and its feature when the device has them.
  bool stats = false;
  DeviceCreateInfo mine = *ci;
  std::vector<const char*> exts(ci->ppEnabledExtensionNames, ci->ppEnabledExtensionNames + ci->enabledExtensionCount);
  FeatureBlob pepFeature{};
  if (statsWanted() && inst.next) {
    auto enumExt = reinterpret_cast<PFN_EnumerateDeviceExtensionProperties>(inst.next(inst.instance, "vkEnumerateDeviceExtensionProperties"));
    uint32_t n = 0;
    enumExt(pd, nullptr, &n, nullptr);
    std::vector<ExtensionProperties> have(n);
    enumExt(pd, nullptr, &n, have.data());
    bool present = false, already = false;
    for (const auto& e : have) present |= std::strcmp(e.extensionName, "VK_KHR_pipeline_executable_properties") == 0;
    for (const char* e : exts) already |= std::strcmp(e, "VK_KHR_pipeline_executable_properties") == 0;
    if (present) {
      if (!already) exts.push_back("VK_KHR_pipeline_executable_properties");
      if (!findInChain(ci->pNext, st::PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR)) {
        pepFeature.sType = st::PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR;
        pepFeature.pNext = const_cast<void*>(ci->pNext);
        pepFeature.b[0] = 1;  // pipelineExecutableInfo
        mine.pNext = &pepFeature;
      }
      mine.enabledExtensionCount = static_cast<uint32_t>(exts.size());
      mine.ppEnabledExtensionNames = exts.data();
      stats = true;
    } else {
      std::fprintf(stderr, "VK_LAYER_SDPA_capture: the device lacks VK_KHR_pipeline_executable_properties; dumping SPIR-V only\n");
    }
  }
  auto create = reinterpret_cast<PFN_CreateDevice>(ngipa(nullptr, "vkCreateDevice"));
  Result r = create(pd, &mine, alloc, out);
  if (r != SUCCESS) return r;
  DeviceData d{};
  d.next = ngdpa;
  d.createShaderModule = reinterpret_cast<PFN_CreateShaderModule>(ngdpa(*out, "vkCreateShaderModule"));
  d.createComputePipelines = reinterpret_cast<PFN_CreateComputePipelines>(ngdpa(*out, "vkCreateComputePipelines"));
  d.createCache = reinterpret_cast<PFN_CreatePipelineCache>(ngdpa(*out, "vkCreatePipelineCache"));
  d.destroyCache = reinterpret_cast<PFN_DestroyPipelineCache>(ngdpa(*out, "vkDestroyPipelineCache"));
  d.fns.cacheData = reinterpret_cast<PFN_GetPipelineCacheData>(ngdpa(*out, "vkGetPipelineCacheData"));
  if (stats) {
    d.fns.props = reinterpret_cast<PFN_GetPipelineExecutablePropertiesKHR>(ngdpa(*out, "vkGetPipelineExecutablePropertiesKHR"));
    d.fns.stats = reinterpret_cast<PFN_GetPipelineExecutableStatisticsKHR>(ngdpa(*out, "vkGetPipelineExecutableStatisticsKHR"));
    d.fns.reprs = reinterpret_cast<PFN_GetPipelineExecutableInternalRepresentationsKHR>(ngdpa(*out, "vkGetPipelineExecutableInternalRepresentationsKHR"));
  }
  d.stats = stats;
  std::lock_guard<std::mutex> g(mu);
  devices[key(*out)] = d;
  return r;
}

DeviceData deviceData(Device dev) {
  std::lock_guard<std::mutex> g(mu);
  return devices[key(dev)];
}

Result CreateShaderModule(Device dev, const ShaderModuleCreateInfo* ci, const void* alloc, ShaderModule* out) {
  const DeviceData d = deviceData(dev);
  const int n = dumpModule(ci);
  Result r = d.createShaderModule(dev, ci, alloc, out);
  if (r == SUCCESS) {
    std::lock_guard<std::mutex> g(mu);
    moduleIndex[*out] = n;
  }
  return r;
}

Result CreateComputePipelines(Device dev, PipelineCache cache, uint32_t count, const ComputePipelineCreateInfo* infos, const void* alloc, Pipeline* out) {
  const DeviceData d = deviceData(dev);
  std::vector<ComputePipelineCreateInfo> mine(infos, infos + count);
  std::vector<int> index(count, -1);
  for (uint32_t i = 0; i < count; i++) {
    std::lock_guard<std::mutex> g(mu);
    auto it = moduleIndex.find(mine[i].stage.module);
    if (it != moduleIndex.end()) index[i] = it->second;
  }
  for (uint32_t i = 0; i < count; i++) {
    // Modules passed inline (VK_KHR_maintenance5) instead of as VkShaderModule objects.
    if (index[i] < 0)
      if (auto* inl = static_cast<const ShaderModuleCreateInfo*>(findInChain(mine[i].stage.pNext, st::SHADER_MODULE_CREATE_INFO))) index[i] = dumpModule(inl);
    if (d.stats) mine[i].flags |= PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR | PIPELINE_CREATE_CAPTURE_INTERNAL_REPRESENTATIONS_BIT_KHR;
  }
  if (!d.stats) return d.createComputePipelines(dev, cache, count, mine.data(), alloc, out);
  // One pipeline at a time through a fresh cache, so each cache blob holds that pipeline's code.
  Result result = SUCCESS;
  for (uint32_t i = 0; i < count; i++) {
    PipelineCacheCreateInfo pcci{st::PIPELINE_CACHE_CREATE_INFO, nullptr, 0, 0, nullptr};
    PipelineCache own = 0;
    d.createCache(dev, &pcci, nullptr, &own);
    Result r = d.createComputePipelines(dev, own ? own : cache, 1, &mine[i], alloc, &out[i]);
    if (r != SUCCESS) {
      result = r;
    } else {
      const std::string tag = index[i] >= 0 ? tagOf(index[i]) : "pipeline" + std::to_string(i);
      const std::string path = dir() + "/" + tag + ".stats.txt";
      if (std::FILE* f = std::fopen(path.c_str(), "w")) {
        vks::dumpExecutables(f, dev, out[i], d.fns, dir(), tag);
        vks::saveCache(f, dev, own, d.fns, dir(), tag);
        std::fclose(f);
      }
    }
    if (own) d.destroyCache(dev, own, nullptr);
  }
  return result;
}

PFN_voidFunction GetDeviceProcAddr(Device dev, const char* name);

PFN_voidFunction intercept(const char* name) {
  if (!std::strcmp(name, "vkCreateInstance")) return reinterpret_cast<PFN_voidFunction>(&CreateInstance);
  if (!std::strcmp(name, "vkCreateDevice")) return reinterpret_cast<PFN_voidFunction>(&CreateDevice);
  if (!std::strcmp(name, "vkCreateShaderModule")) return reinterpret_cast<PFN_voidFunction>(&CreateShaderModule);
  if (!std::strcmp(name, "vkCreateComputePipelines")) return reinterpret_cast<PFN_voidFunction>(&CreateComputePipelines);
  if (!std::strcmp(name, "vkGetDeviceProcAddr")) return reinterpret_cast<PFN_voidFunction>(&GetDeviceProcAddr);
  return nullptr;
}

PFN_voidFunction GetDeviceProcAddr(Device dev, const char* name) {
  if (auto f = intercept(name); f && std::strcmp(name, "vkCreateInstance") && std::strcmp(name, "vkCreateDevice")) return f;
  return deviceData(dev).next(dev, name);
}

}  // namespace

extern "C" {
__attribute__((visibility("default"))) PFN_voidFunction sdpa_capture_GetInstanceProcAddr(Instance inst, const char* name);
__attribute__((visibility("default"))) PFN_voidFunction sdpa_capture_GetDeviceProcAddr(Device dev, const char* name) { return GetDeviceProcAddr(dev, name); }

PFN_voidFunction sdpa_capture_GetInstanceProcAddr(Instance inst, const char* name) {
  if (!std::strcmp(name, "vkGetInstanceProcAddr")) return reinterpret_cast<PFN_voidFunction>(&sdpa_capture_GetInstanceProcAddr);
  if (auto f = intercept(name)) return f;
  if (!inst) return nullptr;
  InstanceData d;
  {
    std::lock_guard<std::mutex> g(mu);
    d = instances[key(inst)];
  }
  return d.next ? d.next(inst, name) : nullptr;
}
}
