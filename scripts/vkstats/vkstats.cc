// vkstats: builds a compute pipeline from SPIR-V files (as Dawn hands them to the driver; the
// capture layer dumps them) and prints what the driver says about the result: every
// VK_KHR_pipeline_executable_properties statistic (registers, spills, shared memory, ... as the
// vendor names them), the module's interface, resident warps per SM derived from them, and the
// ELF images of the driver's pipeline-cache blob (machine code for cuobjdump / nvdisasm).
//
//   vkstats [--no-robust] [--outdir DIR] [--json FILE] NAME=FILE.spv ...
//
// --no-robust: robustBufferAccess off (Dawn turns it on unless its disable_robustness toggle is set).
// The device gets every feature the physical device offers in the core, Vulkan 1.1-1.3 and the
// cooperative-matrix / reconvergence / uniform-control-flow structs, so any module Dawn emits builds.
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common.h"

using namespace vkm;

namespace {

PFN_GetInstanceProcAddr gipa = nullptr;

template <typename F>
F inst(Instance i, const char* name) {
  return reinterpret_cast<F>(gipa(i, name));
}

bool hasExt(const std::vector<ExtensionProperties>& exts, const char* name) {
  for (const auto& e : exts)
    if (std::strcmp(e.extensionName, name) == 0) return true;
  return false;
}

int fail(const char* what, Result r) {
  std::fprintf(stderr, "vkstats: %s failed (VkResult %d)\n", what, r);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  bool robust = true;
  std::string outdir = ".", jsonPath;
  std::vector<std::pair<std::string, std::string>> modules;
  for (int a = 1; a < argc; a++) {
    const std::string s = argv[a];
    if (s == "--no-robust") robust = false;
    else if (s == "--outdir" && a + 1 < argc) outdir = argv[++a];
    else if (s == "--json" && a + 1 < argc) jsonPath = argv[++a];
    else if (s.find('=') != std::string::npos) modules.push_back({s.substr(0, s.find('=')), s.substr(s.find('=') + 1)});
    else modules.push_back({s, s});
  }
  if (modules.empty()) {
    std::fprintf(stderr, "usage: vkstats [--no-robust] [--outdir DIR] [--json FILE] NAME=FILE.spv ...\n");
    return 2;
  }
  void* lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::fprintf(stderr, "vkstats: cannot load libvulkan.so.1 (%s)\n", dlerror());
    return 1;
  }
  gipa = reinterpret_cast<PFN_GetInstanceProcAddr>(dlsym(lib, "vkGetInstanceProcAddr"));

  ApplicationInfo app{st::APPLICATION_INFO, nullptr, "vkstats", 1, "sdpa-dispatch", 1, API_VERSION_1_3};
  InstanceCreateInfo ici{st::INSTANCE_CREATE_INFO, nullptr, 0, &app, 0, nullptr, 0, nullptr};
  Instance instance = nullptr;
  if (Result r = inst<PFN_CreateInstance>(nullptr, "vkCreateInstance")(&ici, nullptr, &instance)) return fail("vkCreateInstance", r);
  uint32_t npd = 0;
  inst<PFN_EnumeratePhysicalDevices>(instance, "vkEnumeratePhysicalDevices")(instance, &npd, nullptr);
  if (npd == 0) return fail("vkEnumeratePhysicalDevices (no device)", -1);
  std::vector<PhysicalDevice> pds(npd);
  inst<PFN_EnumeratePhysicalDevices>(instance, "vkEnumeratePhysicalDevices")(instance, &npd, pds.data());
  // The first discrete GPU, else the first device (Dawn's high-performance choice).
  PhysicalDevice pd = pds[0];
  PhysicalDeviceProperties props{};
  for (auto p : pds) {
    inst<PFN_GetPhysicalDeviceProperties>(instance, "vkGetPhysicalDeviceProperties")(p, &props);
    if (props.deviceType == 2) { pd = p; break; }
  }
  inst<PFN_GetPhysicalDeviceProperties>(instance, "vkGetPhysicalDeviceProperties")(pd, &props);
  std::printf("device | %s, vendor 0x%04x, driver 0x%08x, Vulkan %u.%u.%u\n", props.deviceName, props.vendorID, props.driverVersion,
              props.apiVersion >> 22, (props.apiVersion >> 12) & 0x3ff, props.apiVersion & 0xfff);

  uint32_t next = 0;
  auto enumExt = inst<PFN_EnumerateDeviceExtensionProperties>(instance, "vkEnumerateDeviceExtensionProperties");
  enumExt(pd, nullptr, &next, nullptr);
  std::vector<ExtensionProperties> exts(next);
  enumExt(pd, nullptr, &next, exts.data());

  // Feature chain: query what exists, enable all of it (robustBufferAccess as asked).
  const char* wanted[] = {"VK_KHR_pipeline_executable_properties", "VK_KHR_cooperative_matrix", "VK_KHR_shader_maximal_reconvergence",
                          "VK_KHR_shader_subgroup_uniform_control_flow", "VK_KHR_vulkan_memory_model", "VK_KHR_shader_float16_int8",
                          "VK_KHR_16bit_storage", "VK_EXT_subgroup_size_control", "VK_KHR_spirv_1_4", "VK_KHR_storage_buffer_storage_class",
                          "VK_KHR_shader_integer_dot_product", "VK_KHR_zero_initialize_workgroup_memory", "VK_KHR_shader_subgroup_extended_types"};
  std::vector<const char*> enable;
  for (const char* w : wanted)
    if (hasExt(exts, w)) enable.push_back(w);
  std::vector<FeatureBlob> blobs;
  blobs.reserve(8);
  auto add = [&](StructureType t) { FeatureBlob b{}; b.sType = t; blobs.push_back(b); };
  add(st::PHYSICAL_DEVICE_VULKAN_1_1_FEATURES);
  add(st::PHYSICAL_DEVICE_VULKAN_1_2_FEATURES);
  if (props.apiVersion >= API_VERSION_1_3) add(st::PHYSICAL_DEVICE_VULKAN_1_3_FEATURES);
  if (hasExt(exts, "VK_KHR_pipeline_executable_properties")) add(st::PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR);
  if (hasExt(exts, "VK_KHR_cooperative_matrix")) add(st::PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR);
  if (hasExt(exts, "VK_KHR_shader_maximal_reconvergence")) add(st::PHYSICAL_DEVICE_SHADER_MAXIMAL_RECONVERGENCE_FEATURES_KHR);
  if (hasExt(exts, "VK_KHR_shader_subgroup_uniform_control_flow")) add(st::PHYSICAL_DEVICE_SHADER_SUBGROUP_UNIFORM_CONTROL_FLOW_FEATURES_KHR);
  PhysicalDeviceFeatures2 f2{};
  f2.sType = st::PHYSICAL_DEVICE_FEATURES_2;
  void* chain = nullptr;
  for (auto it = blobs.rbegin(); it != blobs.rend(); ++it) { it->pNext = chain; chain = &*it; }
  f2.pNext = chain;
  inst<PFN_GetPhysicalDeviceFeatures2>(instance, "vkGetPhysicalDeviceFeatures2")(pd, &f2);
  f2.features[0] = robust ? f2.features[0] : 0;  // robustBufferAccess
  std::printf("device | robustBufferAccess %s; extensions:", f2.features[0] ? "on" : "off");
  for (const char* e : enable) std::printf(" %s", e);
  std::printf("\n");

  uint32_t nqf = 0;
  auto qfp = inst<PFN_GetPhysicalDeviceQueueFamilyProperties>(instance, "vkGetPhysicalDeviceQueueFamilyProperties");
  qfp(pd, &nqf, nullptr);
  std::vector<QueueFamilyProperties> qfs(nqf);
  qfp(pd, &nqf, qfs.data());
  uint32_t family = 0;
  for (uint32_t i = 0; i < nqf; i++)
    if (qfs[i].queueFlags & QUEUE_COMPUTE_BIT) { family = i; break; }
  const float prio = 1.0f;
  DeviceQueueCreateInfo qci{st::DEVICE_QUEUE_CREATE_INFO, nullptr, 0, family, 1, &prio};
  DeviceCreateInfo dci{st::DEVICE_CREATE_INFO, &f2, 0, 1, &qci, 0, nullptr, static_cast<uint32_t>(enable.size()), enable.data(), nullptr};
  Device device = nullptr;
  if (Result r = inst<PFN_CreateDevice>(instance, "vkCreateDevice")(pd, &dci, nullptr, &device)) return fail("vkCreateDevice", r);
  auto gdpa = inst<PFN_GetDeviceProcAddr>(instance, "vkGetDeviceProcAddr");
  auto dev = [&](const char* name) { return gdpa(device, name); };
  auto createModule = reinterpret_cast<PFN_CreateShaderModule>(dev("vkCreateShaderModule"));
  auto createDsl = reinterpret_cast<PFN_CreateDescriptorSetLayout>(dev("vkCreateDescriptorSetLayout"));
  auto createLayout = reinterpret_cast<PFN_CreatePipelineLayout>(dev("vkCreatePipelineLayout"));
  auto createCache = reinterpret_cast<PFN_CreatePipelineCache>(dev("vkCreatePipelineCache"));
  auto createPipelines = reinterpret_cast<PFN_CreateComputePipelines>(dev("vkCreateComputePipelines"));
  auto destroyPipeline = reinterpret_cast<PFN_DestroyPipeline>(dev("vkDestroyPipeline"));
  auto destroyCache = reinterpret_cast<PFN_DestroyPipelineCache>(dev("vkDestroyPipelineCache"));
  auto destroyLayout = reinterpret_cast<PFN_DestroyPipelineLayout>(dev("vkDestroyPipelineLayout"));
  auto destroyDsl = reinterpret_cast<PFN_DestroyDescriptorSetLayout>(dev("vkDestroyDescriptorSetLayout"));
  auto destroyModule = reinterpret_cast<PFN_DestroyShaderModule>(dev("vkDestroyShaderModule"));
  vks::StatFns fns;
  const bool pep = hasExt(exts, "VK_KHR_pipeline_executable_properties");
  if (pep) {
    fns.props = reinterpret_cast<PFN_GetPipelineExecutablePropertiesKHR>(dev("vkGetPipelineExecutablePropertiesKHR"));
    fns.stats = reinterpret_cast<PFN_GetPipelineExecutableStatisticsKHR>(dev("vkGetPipelineExecutableStatisticsKHR"));
    fns.reprs = reinterpret_cast<PFN_GetPipelineExecutableInternalRepresentationsKHR>(dev("vkGetPipelineExecutableInternalRepresentationsKHR"));
  }
  fns.cacheData = reinterpret_cast<PFN_GetPipelineCacheData>(dev("vkGetPipelineCacheData"));

  std::string json = "[";
  int failures = 0;
  for (const auto& [tag, path] : modules) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() < 20 || bytes.size() % 4) {
      std::printf("module %s | cannot read %s as SPIR-V (%zu bytes)\n", tag.c_str(), path.c_str(), bytes.size());
      failures++;
      continue;
    }
    std::vector<uint32_t> words(bytes.size() / 4);
    std::memcpy(words.data(), bytes.data(), bytes.size());
    const vks::ModuleInfo mi = vks::parseSpirv(words.data(), words.size());
    if (!mi.error.empty()) {
      std::printf("module %s | %s\n", tag.c_str(), mi.error.c_str());
      failures++;
      continue;
    }
    std::printf("module %s | entry '%s', workgroup %ux%ux%u, %llu B of workgroup variables, %zu bindings, push constants %u B; capabilities:",
                tag.c_str(), mi.entryPoint.c_str(), mi.localSize[0], mi.localSize[1], mi.localSize[2], static_cast<unsigned long long>(mi.workgroupBytes),
                mi.bindings.size(), mi.pushConstantBytes);
    for (const auto& c : mi.capabilities) std::printf(" %s", c.c_str());
    std::printf("\n");

    ShaderModuleCreateInfo smci{st::SHADER_MODULE_CREATE_INFO, nullptr, 0, bytes.size(), words.data()};
    ShaderModule module = 0;
    if (Result r = createModule(device, &smci, nullptr, &module)) { std::printf("module %s | vkCreateShaderModule failed (%d)\n", tag.c_str(), r); failures++; continue; }
    // One set layout per set the module uses (Dawn uses set 0 for these kernels).
    uint32_t nsets = 0;
    for (const auto& b : mi.bindings) nsets = std::max(nsets, b.set + 1);
    std::vector<DescriptorSetLayout> dsls(nsets, 0);
    for (uint32_t s = 0; s < nsets; s++) {
      std::vector<DescriptorSetLayoutBinding> bs;
      for (const auto& b : mi.bindings)
        if (b.set == s) bs.push_back({b.binding, b.type, 1, SHADER_STAGE_COMPUTE_BIT, nullptr});
      DescriptorSetLayoutCreateInfo dslci{st::DESCRIPTOR_SET_LAYOUT_CREATE_INFO, nullptr, 0, static_cast<uint32_t>(bs.size()), bs.data()};
      createDsl(device, &dslci, nullptr, &dsls[s]);
    }
    PushConstantRange pcr{SHADER_STAGE_COMPUTE_BIT, 0, mi.pushConstantBytes};
    PipelineLayoutCreateInfo plci{st::PIPELINE_LAYOUT_CREATE_INFO, nullptr, 0, nsets, dsls.data(), mi.pushConstantBytes ? 1u : 0u, &pcr};
    PipelineLayout layout = 0;
    createLayout(device, &plci, nullptr, &layout);
    PipelineCacheCreateInfo pcci{st::PIPELINE_CACHE_CREATE_INFO, nullptr, 0, 0, nullptr};
    PipelineCache cache = 0;
    createCache(device, &pcci, nullptr, &cache);
    ComputePipelineCreateInfo cpci{};
    cpci.sType = st::COMPUTE_PIPELINE_CREATE_INFO;
    cpci.flags = pep ? (PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR | PIPELINE_CREATE_CAPTURE_INTERNAL_REPRESENTATIONS_BIT_KHR) : 0;
    cpci.stage = {st::PIPELINE_SHADER_STAGE_CREATE_INFO, nullptr, 0, SHADER_STAGE_COMPUTE_BIT, module, mi.entryPoint.c_str(), nullptr};
    cpci.layout = layout;
    cpci.basePipelineIndex = -1;
    Pipeline pipeline = 0;
    Result r = createPipelines(device, cache, 1, &cpci, nullptr, &pipeline);
    if (r != SUCCESS) {
      std::printf("module %s | vkCreateComputePipelines failed (%d)\n", tag.c_str(), r);
      failures++;
    } else {
      const auto stats = vks::dumpExecutables(stdout, device, pipeline, fns, outdir, tag);
      vks::saveCache(stdout, device, cache, fns, outdir, tag);
      const double regs = vks::findStat(stats, {"register"});
      const double spill = vks::findStat(stats, {"spill", "local memory", "stack"});
      const uint32_t lanes = mi.localSize[0] * mi.localSize[1] * mi.localSize[2];
      vks::printOccupancy(stdout, tag, regs, mi.workgroupBytes, lanes);
      json += std::string(json.size() > 1 ? "," : "") + "{\"name\":\"" + vks::jsonEscape(tag) + "\",\"lanes\":" + std::to_string(lanes) +
              ",\"workgroupBytes\":" + std::to_string(mi.workgroupBytes) + ",\"registers\":" + std::to_string(regs) + ",\"spill\":" + std::to_string(spill) + ",\"stats\":{";
      for (size_t k = 0; k < stats.size(); k++)
        json += std::string(k ? "," : "") + "\"" + vks::jsonEscape(stats[k].executable + "/" + stats[k].name) + "\":\"" + vks::jsonEscape(stats[k].value) + "\"";
      json += "}}";
      destroyPipeline(device, pipeline, nullptr);
    }
    destroyCache(device, cache, nullptr);
    destroyLayout(device, layout, nullptr);
    for (auto d : dsls) destroyDsl(device, d, nullptr);
    destroyModule(device, module, nullptr);
  }
  json += "]\n";
  if (!jsonPath.empty()) vks::writeFile(jsonPath, json.data(), json.size());
  reinterpret_cast<PFN_DestroyDevice>(dev("vkDestroyDevice"))(device, nullptr);
  inst<PFN_DestroyInstance>(instance, "vkDestroyInstance")(instance, nullptr);
  return failures ? 1 : 0;
}
