// Compile-time check that vkmini.h lays out every struct and constant as vulkan_core.h and
// vk_layer.h do (built only where the real headers are installed).
#include <vulkan/vk_layer.h>
#include <vulkan/vulkan_core.h>

#include <cstddef>

#include "vkmini.h"

#define SAME_SIZE(mini, real) static_assert(sizeof(vkm::mini) == sizeof(real), #mini " size differs from " #real)
#define SAME_OFFSET(mini, real, m1, m2) static_assert(offsetof(vkm::mini, m1) == offsetof(real, m2), #mini "." #m1 " offset differs")
#define SAME_VALUE(mini, real) static_assert(static_cast<long long>(vkm::mini) == static_cast<long long>(real), #mini " differs from " #real)

SAME_SIZE(ApplicationInfo, VkApplicationInfo);
SAME_SIZE(InstanceCreateInfo, VkInstanceCreateInfo);
SAME_SIZE(ExtensionProperties, VkExtensionProperties);
SAME_SIZE(PhysicalDeviceProperties, VkPhysicalDeviceProperties);
SAME_OFFSET(PhysicalDeviceProperties, VkPhysicalDeviceProperties, deviceName, deviceName);
SAME_OFFSET(PhysicalDeviceProperties, VkPhysicalDeviceProperties, limits, limits);
SAME_OFFSET(PhysicalDeviceProperties, VkPhysicalDeviceProperties, sparseProperties, sparseProperties);
SAME_SIZE(QueueFamilyProperties, VkQueueFamilyProperties);
SAME_SIZE(DeviceQueueCreateInfo, VkDeviceQueueCreateInfo);
SAME_SIZE(PhysicalDeviceFeatures2, VkPhysicalDeviceFeatures2);
static_assert(sizeof(VkPhysicalDeviceFeatures) == vkm::CORE_FEATURE_COUNT * sizeof(VkBool32), "core feature count");
static_assert(offsetof(VkPhysicalDeviceFeatures, robustBufferAccess) == 0, "robustBufferAccess first");
static_assert(sizeof(vkm::FeatureBlob) >= sizeof(VkPhysicalDeviceVulkan12Features), "feature blob too small");
static_assert(sizeof(vkm::FeatureBlob) >= sizeof(VkPhysicalDeviceVulkan13Features), "feature blob too small");
static_assert(offsetof(VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR, pipelineExecutableInfo) == offsetof(vkm::FeatureBlob, b), "pipelineExecutableInfo first");
SAME_SIZE(DeviceCreateInfo, VkDeviceCreateInfo);
SAME_SIZE(ShaderModuleCreateInfo, VkShaderModuleCreateInfo);
SAME_SIZE(DescriptorSetLayoutBinding, VkDescriptorSetLayoutBinding);
SAME_SIZE(DescriptorSetLayoutCreateInfo, VkDescriptorSetLayoutCreateInfo);
SAME_SIZE(PushConstantRange, VkPushConstantRange);
SAME_SIZE(PipelineLayoutCreateInfo, VkPipelineLayoutCreateInfo);
SAME_SIZE(PipelineShaderStageCreateInfo, VkPipelineShaderStageCreateInfo);
SAME_SIZE(ComputePipelineCreateInfo, VkComputePipelineCreateInfo);
SAME_OFFSET(ComputePipelineCreateInfo, VkComputePipelineCreateInfo, layout, layout);
SAME_SIZE(PipelineCacheCreateInfo, VkPipelineCacheCreateInfo);
SAME_SIZE(PipelineInfoKHR, VkPipelineInfoKHR);
SAME_SIZE(PipelineExecutablePropertiesKHR, VkPipelineExecutablePropertiesKHR);
SAME_SIZE(PipelineExecutableInfoKHR, VkPipelineExecutableInfoKHR);
SAME_SIZE(PipelineExecutableStatisticKHR, VkPipelineExecutableStatisticKHR);
SAME_OFFSET(PipelineExecutableStatisticKHR, VkPipelineExecutableStatisticKHR, value, value);
SAME_SIZE(PipelineExecutableInternalRepresentationKHR, VkPipelineExecutableInternalRepresentationKHR);
SAME_OFFSET(PipelineExecutableInternalRepresentationKHR, VkPipelineExecutableInternalRepresentationKHR, pData, pData);
SAME_SIZE(LayerInstanceLink, VkLayerInstanceLink);
SAME_SIZE(LayerInstanceCreateInfo, VkLayerInstanceCreateInfo);
SAME_OFFSET(LayerInstanceCreateInfo, VkLayerInstanceCreateInfo, u, u);
SAME_SIZE(LayerDeviceLink, VkLayerDeviceLink);
SAME_SIZE(LayerDeviceCreateInfo, VkLayerDeviceCreateInfo);

SAME_VALUE(st::APPLICATION_INFO, VK_STRUCTURE_TYPE_APPLICATION_INFO);
SAME_VALUE(st::INSTANCE_CREATE_INFO, VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO);
SAME_VALUE(st::DEVICE_QUEUE_CREATE_INFO, VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO);
SAME_VALUE(st::DEVICE_CREATE_INFO, VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO);
SAME_VALUE(st::SHADER_MODULE_CREATE_INFO, VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO);
SAME_VALUE(st::PIPELINE_CACHE_CREATE_INFO, VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO);
SAME_VALUE(st::PIPELINE_SHADER_STAGE_CREATE_INFO, VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO);
SAME_VALUE(st::COMPUTE_PIPELINE_CREATE_INFO, VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO);
SAME_VALUE(st::PIPELINE_LAYOUT_CREATE_INFO, VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO);
SAME_VALUE(st::DESCRIPTOR_SET_LAYOUT_CREATE_INFO, VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO);
SAME_VALUE(st::LOADER_INSTANCE_CREATE_INFO, VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO);
SAME_VALUE(st::LOADER_DEVICE_CREATE_INFO, VK_STRUCTURE_TYPE_LOADER_DEVICE_CREATE_INFO);
SAME_VALUE(st::PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES);
SAME_VALUE(st::PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES);
SAME_VALUE(st::PHYSICAL_DEVICE_VULKAN_1_3_FEATURES, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES);
SAME_VALUE(st::PHYSICAL_DEVICE_FEATURES_2, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
SAME_VALUE(st::PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR);
SAME_VALUE(st::PIPELINE_INFO_KHR, VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR);
SAME_VALUE(st::PIPELINE_EXECUTABLE_PROPERTIES_KHR, VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_PROPERTIES_KHR);
SAME_VALUE(st::PIPELINE_EXECUTABLE_INFO_KHR, VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR);
SAME_VALUE(st::PIPELINE_EXECUTABLE_STATISTIC_KHR, VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR);
SAME_VALUE(st::PIPELINE_EXECUTABLE_INTERNAL_REPRESENTATION_KHR, VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INTERNAL_REPRESENTATION_KHR);
SAME_VALUE(st::PHYSICAL_DEVICE_SHADER_SUBGROUP_UNIFORM_CONTROL_FLOW_FEATURES_KHR, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SUBGROUP_UNIFORM_CONTROL_FLOW_FEATURES_KHR);
#ifdef VK_KHR_shader_maximal_reconvergence
SAME_VALUE(st::PHYSICAL_DEVICE_SHADER_MAXIMAL_RECONVERGENCE_FEATURES_KHR, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_MAXIMAL_RECONVERGENCE_FEATURES_KHR);
#endif
#ifdef VK_KHR_cooperative_matrix
SAME_VALUE(st::PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR);
#endif
SAME_VALUE(DESCRIPTOR_TYPE_UNIFORM_BUFFER, VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER);
SAME_VALUE(DESCRIPTOR_TYPE_STORAGE_BUFFER, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER);
SAME_VALUE(SHADER_STAGE_COMPUTE_BIT, VK_SHADER_STAGE_COMPUTE_BIT);
SAME_VALUE(QUEUE_COMPUTE_BIT, VK_QUEUE_COMPUTE_BIT);
SAME_VALUE(PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR, VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR);
SAME_VALUE(PIPELINE_CREATE_CAPTURE_INTERNAL_REPRESENTATIONS_BIT_KHR, VK_PIPELINE_CREATE_CAPTURE_INTERNAL_REPRESENTATIONS_BIT_KHR);
SAME_VALUE(API_VERSION_1_3, VK_API_VERSION_1_3);
SAME_VALUE(STAT_FORMAT_FLOAT64, VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_FLOAT64_KHR);
SAME_VALUE(LAYER_LINK_INFO, VK_LAYER_LINK_INFO);

int main() { return 0; }
