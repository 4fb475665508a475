// What vkstats (a pipeline from a SPIR-V file) and the capture layer (Dawn's own pipelines) share:
// reading a SPIR-V module's interface, printing a pipeline's executable statistics, saving the
// driver's pipeline-cache blob and the ELF images inside it, and resident warps per SM.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "vkmini.h"

namespace vks {

// One descriptor binding of set 0..n, as the module declares it.
struct Binding {
  uint32_t set = 0;
  uint32_t binding = 0;
  uint32_t type = 0;  // vkm::DESCRIPTOR_TYPE_*
};

// What a compute pipeline needs to be built from a module, and what the module says about itself.
struct ModuleInfo {
  std::vector<Binding> bindings;
  uint32_t pushConstantBytes = 0;  // 0: none
  std::string entryPoint;
  uint32_t localSize[3] = {1, 1, 1};
  uint64_t workgroupBytes = 0;  // sum of the Workgroup variables (natural layout)
  std::vector<std::string> capabilities;
  std::vector<std::string> extensions;
  std::string error;  // non-empty when the words are no SPIR-V module
};

ModuleInfo parseSpirv(const uint32_t* words, size_t count);

// Device functions the statistics need (null when the extension is absent).
struct StatFns {
  vkm::PFN_GetPipelineExecutablePropertiesKHR props = nullptr;
  vkm::PFN_GetPipelineExecutableStatisticsKHR stats = nullptr;
  vkm::PFN_GetPipelineExecutableInternalRepresentationsKHR reprs = nullptr;
  vkm::PFN_GetPipelineCacheData cacheData = nullptr;
};

// One statistic, as printed.
struct Stat {
  std::string executable;
  std::string name;
  std::string description;
  std::string value;  // formatted
  double number = 0;
};

// Prints (to `out`) every executable and statistic of `pipeline` (lines `stat <tag> <exe> | <name> = <value>`),
// writes internal representations to `<outdir>/<tag>.<exe>.<name>.txt`, and returns the statistics.
std::vector<Stat> dumpExecutables(std::FILE* out, vkm::Device device, vkm::Pipeline pipeline, const StatFns& fns, const std::string& outdir, const std::string& tag);

// Saves the cache blob to `<outdir>/<tag>.cache` and every ELF image found in it to
// `<outdir>/<tag>.<n>.elf` (the driver's machine code, for cuobjdump / nvdisasm); returns the count.
int saveCache(std::FILE* out, vkm::Device device, vkm::PipelineCache cache, const StatFns& fns, const std::string& outdir, const std::string& tag);

// Resident workgroups and warps per SM from registers per thread, workgroup bytes and lanes, for an
// NVIDIA sm_90 (H100 / H200) multiprocessor; prints the limiting resource.
void printOccupancy(std::FILE* out, const std::string& tag, double regsPerThread, uint64_t workgroupBytes, uint32_t lanes);

// Picks the register and spill figures from the driver's statistics (names differ by vendor).
double findStat(const std::vector<Stat>& stats, const std::vector<std::string>& needles);

bool writeFile(const std::string& path, const void* data, size_t bytes);
std::string jsonEscape(const std::string& s);

}  // namespace vks
