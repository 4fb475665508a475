// The slice of the Vulkan API that vkstats and the capture layer use, declared here so that they
// build on a GPU host without Vulkan headers (the loader, libvulkan.so.1, is opened at run time).
// Layouts follow vulkan_core.h / vk_layer.h; abi_check.cc compares them with the real headers
// wherever those are installed (the CMake target vkmini_abi_check).
#pragma once
#include <cstddef>
#include <cstdint>

namespace vkm {

using Result = int32_t;
using Bool32 = uint32_t;
using Flags = uint32_t;
using DeviceSize = uint64_t;
using StructureType = int32_t;

constexpr Result SUCCESS = 0;
constexpr Result INCOMPLETE = 5;

// Dispatchable handles are pointers; non-dispatchable ones 64-bit values on every platform we build for.
using Instance = struct Instance_T*;
using PhysicalDevice = struct PhysicalDevice_T*;
using Device = struct Device_T*;
using ShaderModule = uint64_t;
using Pipeline = uint64_t;
using PipelineLayout = uint64_t;
using PipelineCache = uint64_t;
using DescriptorSetLayout = uint64_t;
using Sampler = uint64_t;

namespace st {
constexpr StructureType APPLICATION_INFO = 0;
constexpr StructureType INSTANCE_CREATE_INFO = 1;
constexpr StructureType DEVICE_QUEUE_CREATE_INFO = 2;
constexpr StructureType DEVICE_CREATE_INFO = 3;
constexpr StructureType SHADER_MODULE_CREATE_INFO = 16;
constexpr StructureType PIPELINE_CACHE_CREATE_INFO = 17;
constexpr StructureType PIPELINE_SHADER_STAGE_CREATE_INFO = 18;
constexpr StructureType COMPUTE_PIPELINE_CREATE_INFO = 29;
constexpr StructureType PIPELINE_LAYOUT_CREATE_INFO = 30;
constexpr StructureType DESCRIPTOR_SET_LAYOUT_CREATE_INFO = 32;
constexpr StructureType LOADER_INSTANCE_CREATE_INFO = 47;
constexpr StructureType LOADER_DEVICE_CREATE_INFO = 48;
constexpr StructureType PHYSICAL_DEVICE_VULKAN_1_1_FEATURES = 49;
constexpr StructureType PHYSICAL_DEVICE_VULKAN_1_2_FEATURES = 51;
constexpr StructureType PHYSICAL_DEVICE_VULKAN_1_3_FEATURES = 53;
constexpr StructureType PHYSICAL_DEVICE_FEATURES_2 = 1000059000;
constexpr StructureType PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR = 1000269000;
constexpr StructureType PIPELINE_INFO_KHR = 1000269001;
constexpr StructureType PIPELINE_EXECUTABLE_PROPERTIES_KHR = 1000269002;
constexpr StructureType PIPELINE_EXECUTABLE_INFO_KHR = 1000269003;
constexpr StructureType PIPELINE_EXECUTABLE_STATISTIC_KHR = 1000269004;
constexpr StructureType PIPELINE_EXECUTABLE_INTERNAL_REPRESENTATION_KHR = 1000269005;
constexpr StructureType PHYSICAL_DEVICE_SHADER_SUBGROUP_UNIFORM_CONTROL_FLOW_FEATURES_KHR = 1000323000;
constexpr StructureType PHYSICAL_DEVICE_SHADER_MAXIMAL_RECONVERGENCE_FEATURES_KHR = 1000434000;
constexpr StructureType PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR = 1000506000;
}  // namespace st

constexpr uint32_t DESCRIPTOR_TYPE_UNIFORM_BUFFER = 6;
constexpr uint32_t DESCRIPTOR_TYPE_STORAGE_BUFFER = 7;
constexpr Flags SHADER_STAGE_COMPUTE_BIT = 0x20;
constexpr Flags QUEUE_COMPUTE_BIT = 0x2;
constexpr Flags PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR = 0x40;
constexpr Flags PIPELINE_CREATE_CAPTURE_INTERNAL_REPRESENTATIONS_BIT_KHR = 0x80;
constexpr uint32_t API_VERSION_1_3 = (1u << 22) | (3u << 12);
constexpr uint32_t STAT_FORMAT_BOOL32 = 0, STAT_FORMAT_INT64 = 1, STAT_FORMAT_UINT64 = 2, STAT_FORMAT_FLOAT64 = 3;

struct ApplicationInfo {
  StructureType sType;
  const void* pNext;
  const char* pApplicationName;
  uint32_t applicationVersion;
  const char* pEngineName;
  uint32_t engineVersion;
  uint32_t apiVersion;
};

struct InstanceCreateInfo {
  StructureType sType;
  const void* pNext;
  Flags flags;
  const ApplicationInfo* pApplicationInfo;
  uint32_t enabledLayerCount;
  const char* const* ppEnabledLayerNames;
  uint32_t enabledExtensionCount;
  const char* const* ppEnabledExtensionNames;
};

struct ExtensionProperties {
  char extensionName[256];
  uint32_t specVersion;
};

// VkPhysicalDeviceProperties with the limits and sparse properties kept opaque.
struct PhysicalDeviceProperties {
  uint32_t apiVersion;
  uint32_t driverVersion;
  uint32_t vendorID;
  uint32_t deviceID;
  uint32_t deviceType;
  char deviceName[256];
  uint8_t pipelineCacheUUID[16];
  alignas(8) uint8_t limits[504];
  uint8_t sparseProperties[20];
};

struct QueueFamilyProperties {
  Flags queueFlags;
  uint32_t queueCount;
  uint32_t timestampValidBits;
  uint32_t minImageTransferGranularity[3];
};

struct DeviceQueueCreateInfo {
  StructureType sType;
  const void* pNext;
  Flags flags;
  uint32_t queueFamilyIndex;
  uint32_t queueCount;
  const float* pQueuePriorities;
};

// VkPhysicalDeviceFeatures: 55 VkBool32, robustBufferAccess first.
constexpr int CORE_FEATURE_COUNT = 55;
struct PhysicalDeviceFeatures2 {
  StructureType sType;
  void* pNext;
  Bool32 features[CORE_FEATURE_COUNT];
};

// Any extension feature struct is sType, pNext, then VkBool32 members; 64 covers the largest we chain.
struct FeatureBlob {
  StructureType sType;
  void* pNext;
  Bool32 b[64];
};

struct DeviceCreateInfo {
  StructureType sType;
  const void* pNext;
  Flags flags;
  uint32_t queueCreateInfoCount;
  const DeviceQueueCreateInfo* pQueueCreateInfos;
  uint32_t enabledLayerCount;
  const char* const* ppEnabledLayerNames;
  uint32_t enabledExtensionCount;
  const char* const* ppEnabledExtensionNames;
  const void* pEnabledFeatures;
};

struct ShaderModuleCreateInfo {
  StructureType sType;
  const void* pNext;
  Flags flags;
  size_t codeSize;
  const uint32_t* pCode;
};

struct DescriptorSetLayoutBinding {
  uint32_t binding;
  uint32_t descriptorType;
  uint32_t descriptorCount;
  Flags stageFlags;
  const Sampler* pImmutableSamplers;
};

struct DescriptorSetLayoutCreateInfo {
  StructureType sType;
  const void* pNext;
  Flags flags;
  uint32_t bindingCount;
  const DescriptorSetLayoutBinding* pBindings;
};

struct PushConstantRange {
  Flags stageFlags;
  uint32_t offset;
  uint32_t size;
};

struct PipelineLayoutCreateInfo {
  StructureType sType;
  const void* pNext;
  Flags flags;
  uint32_t setLayoutCount;
  const DescriptorSetLayout* pSetLayouts;
  uint32_t pushConstantRangeCount;
  const PushConstantRange* pPushConstantRanges;
};

struct PipelineShaderStageCreateInfo {
  StructureType sType;
  const void* pNext;
  Flags flags;
  Flags stage;
  ShaderModule module;
  const char* pName;
  const void* pSpecializationInfo;
};

struct ComputePipelineCreateInfo {
  StructureType sType;
  const void* pNext;
  Flags flags;
  PipelineShaderStageCreateInfo stage;
  PipelineLayout layout;
  Pipeline basePipelineHandle;
  int32_t basePipelineIndex;
};

struct PipelineCacheCreateInfo {
  StructureType sType;
  const void* pNext;
  Flags flags;
  size_t initialDataSize;
  const void* pInitialData;
};

struct PipelineInfoKHR {
  StructureType sType;
  const void* pNext;
  Pipeline pipeline;
};

struct PipelineExecutablePropertiesKHR {
  StructureType sType;
  void* pNext;
  Flags stages;
  char name[256];
  char description[256];
  uint32_t subgroupSize;
};

struct PipelineExecutableInfoKHR {
  StructureType sType;
  const void* pNext;
  Pipeline pipeline;
  uint32_t executableIndex;
};

union PipelineExecutableStatisticValueKHR {
  Bool32 b32;
  int64_t i64;
  uint64_t u64;
  double f64;
};

struct PipelineExecutableStatisticKHR {
  StructureType sType;
  void* pNext;
  char name[256];
  char description[256];
  uint32_t format;
  PipelineExecutableStatisticValueKHR value;
};

struct PipelineExecutableInternalRepresentationKHR {
  StructureType sType;
  void* pNext;
  char name[256];
  char description[256];
  Bool32 isText;
  size_t dataSize;
  void* pData;
};

// Loader <-> layer interface (vk_layer.h).
using PFN_voidFunction = void (*)();
using PFN_GetInstanceProcAddr = PFN_voidFunction (*)(Instance, const char*);
using PFN_GetDeviceProcAddr = PFN_voidFunction (*)(Device, const char*);
using PFN_GetPhysicalDeviceProcAddr = PFN_voidFunction (*)(Instance, const char*);
constexpr int32_t LAYER_LINK_INFO = 0;

struct LayerInstanceLink {
  LayerInstanceLink* pNext;
  PFN_GetInstanceProcAddr pfnNextGetInstanceProcAddr;
  PFN_GetPhysicalDeviceProcAddr pfnNextGetPhysicalDeviceProcAddr;
};

struct LayerInstanceCreateInfo {
  StructureType sType;
  const void* pNext;
  int32_t function;
  union {
    LayerInstanceLink* pLayerInfo;
    void* other[2];  // the loader's other payloads (callbacks, feature flags); never read here
  } u;
};

struct LayerDeviceLink {
  LayerDeviceLink* pNext;
  PFN_GetInstanceProcAddr pfnNextGetInstanceProcAddr;
  PFN_GetDeviceProcAddr pfnNextGetDeviceProcAddr;
};

struct LayerDeviceCreateInfo {
  StructureType sType;
  const void* pNext;
  int32_t function;
  union {
    LayerDeviceLink* pLayerInfo;
    void* other;
  } u;
};

// Entry points, by the names the loader resolves.
using PFN_CreateInstance = Result (*)(const InstanceCreateInfo*, const void*, Instance*);
using PFN_DestroyInstance = void (*)(Instance, const void*);
using PFN_EnumeratePhysicalDevices = Result (*)(Instance, uint32_t*, PhysicalDevice*);
using PFN_GetPhysicalDeviceProperties = void (*)(PhysicalDevice, PhysicalDeviceProperties*);
using PFN_GetPhysicalDeviceFeatures2 = void (*)(PhysicalDevice, PhysicalDeviceFeatures2*);
using PFN_GetPhysicalDeviceQueueFamilyProperties = void (*)(PhysicalDevice, uint32_t*, QueueFamilyProperties*);
using PFN_EnumerateDeviceExtensionProperties = Result (*)(PhysicalDevice, const char*, uint32_t*, ExtensionProperties*);
using PFN_CreateDevice = Result (*)(PhysicalDevice, const DeviceCreateInfo*, const void*, Device*);
using PFN_DestroyDevice = void (*)(Device, const void*);
using PFN_CreateShaderModule = Result (*)(Device, const ShaderModuleCreateInfo*, const void*, ShaderModule*);
using PFN_DestroyShaderModule = void (*)(Device, ShaderModule, const void*);
using PFN_CreateDescriptorSetLayout = Result (*)(Device, const DescriptorSetLayoutCreateInfo*, const void*, DescriptorSetLayout*);
using PFN_DestroyDescriptorSetLayout = void (*)(Device, DescriptorSetLayout, const void*);
using PFN_CreatePipelineLayout = Result (*)(Device, const PipelineLayoutCreateInfo*, const void*, PipelineLayout*);
using PFN_DestroyPipelineLayout = void (*)(Device, PipelineLayout, const void*);
using PFN_CreatePipelineCache = Result (*)(Device, const PipelineCacheCreateInfo*, const void*, PipelineCache*);
using PFN_DestroyPipelineCache = void (*)(Device, PipelineCache, const void*);
using PFN_GetPipelineCacheData = Result (*)(Device, PipelineCache, size_t*, void*);
using PFN_CreateComputePipelines = Result (*)(Device, PipelineCache, uint32_t, const ComputePipelineCreateInfo*, const void*, Pipeline*);
using PFN_DestroyPipeline = void (*)(Device, Pipeline, const void*);
using PFN_GetPipelineExecutablePropertiesKHR = Result (*)(Device, const PipelineInfoKHR*, uint32_t*, PipelineExecutablePropertiesKHR*);
using PFN_GetPipelineExecutableStatisticsKHR = Result (*)(Device, const PipelineExecutableInfoKHR*, uint32_t*, PipelineExecutableStatisticKHR*);
using PFN_GetPipelineExecutableInternalRepresentationsKHR = Result (*)(Device, const PipelineExecutableInfoKHR*, uint32_t*, PipelineExecutableInternalRepresentationKHR*);

}  // namespace vkm
