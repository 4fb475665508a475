#include "common.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

namespace vks {

namespace {

// SPIR-V opcodes and enumerants used below (SPIR-V 1.6 core grammar).
enum : uint32_t {
  OpName = 5, OpExtension = 10, OpEntryPoint = 15, OpExecutionMode = 16, OpCapability = 17,
  OpTypeInt = 21, OpTypeFloat = 22, OpTypeVector = 23, OpTypeMatrix = 24, OpTypeArray = 28,
  OpTypeRuntimeArray = 29, OpTypeStruct = 30, OpTypePointer = 32, OpConstant = 43, OpVariable = 59,
  OpDecorate = 71,
};
enum : uint32_t { ExecutionModeLocalSize = 17 };
enum : uint32_t { DecorationBlock = 2, DecorationBufferBlock = 3, DecorationBinding = 33, DecorationDescriptorSet = 34 };
enum : uint32_t { SCUniform = 2, SCWorkgroup = 4, SCPushConstant = 9, SCStorageBuffer = 12 };

std::string literalString(const uint32_t* w, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; i++) {
    for (int b = 0; b < 4; b++) {
      char c = static_cast<char>((w[i] >> (8 * b)) & 0xff);
      if (!c) return s;
      s.push_back(c);
    }
  }
  return s;
}

// Names of the capabilities a compute kernel may declare (others print as numbers).
std::string capabilityName(uint32_t c) {
  static const std::map<uint32_t, const char*> names = {
      {1, "Shader"}, {9, "Float16"}, {10, "Float64"}, {11, "Int64"}, {22, "Int16"}, {39, "Int8"},
      {61, "GroupNonUniform"}, {62, "GroupNonUniformVote"}, {63, "GroupNonUniformArithmetic"},
      {64, "GroupNonUniformBallot"}, {65, "GroupNonUniformShuffle"}, {66, "GroupNonUniformShuffleRelative"},
      {4433, "StorageBuffer16BitAccess"}, {4434, "UniformAndStorageBuffer16BitAccess"}, {4448, "StorageBuffer8BitAccess"},
      {5345, "VulkanMemoryModel"}, {5346, "VulkanMemoryModelDeviceScope"}, {6022, "CooperativeMatrixKHR"},
      {4427, "ShaderClockKHR"}, {5347, "PhysicalStorageBufferAddresses"},
  };
  auto it = names.find(c);
  return it != names.end() ? it->second : std::to_string(c);
}

}  // namespace

ModuleInfo parseSpirv(const uint32_t* words, size_t count) {
  ModuleInfo info;
  if (count < 5 || words[0] != 0x07230203u) {
    info.error = "not a SPIR-V module (bad magic number)";
    return info;
  }
  std::map<uint32_t, uint32_t> set, binding;
  std::map<uint32_t, bool> block, bufferBlock;
  struct Ptr { uint32_t sc, type; };
  std::map<uint32_t, Ptr> pointers;
  std::map<uint32_t, uint64_t> typeBytes, constants;
  std::vector<std::pair<uint32_t, uint32_t>> variables;  // (pointer type, id) of interface variables
  for (size_t i = 5; i < count;) {
    const uint32_t n = words[i] >> 16, op = words[i] & 0xffff;
    if (n == 0 || i + n > count) {
      info.error = "truncated instruction";
      return info;
    }
    const uint32_t* a = words + i + 1;
    switch (op) {
      case OpCapability: info.capabilities.push_back(capabilityName(a[0])); break;
      case OpExtension: info.extensions.push_back(literalString(a, n - 1)); break;
      case OpEntryPoint: if (info.entryPoint.empty()) info.entryPoint = literalString(a + 2, n - 3); break;
      case OpExecutionMode:
        if (a[1] == ExecutionModeLocalSize && n >= 6) for (int d = 0; d < 3; d++) info.localSize[d] = a[2 + d];
        break;
      case OpDecorate:
        if (a[1] == DecorationDescriptorSet) set[a[0]] = a[2];
        if (a[1] == DecorationBinding) binding[a[0]] = a[2];
        if (a[1] == DecorationBlock) block[a[0]] = true;
        if (a[1] == DecorationBufferBlock) bufferBlock[a[0]] = true;
        break;
      case OpTypeInt: case OpTypeFloat: typeBytes[a[0]] = a[1] / 8; break;
      case OpTypeVector: case OpTypeMatrix: typeBytes[a[0]] = typeBytes[a[1]] * a[2]; break;
      case OpConstant: if (n >= 4) constants[a[1]] = a[2]; break;
      case OpTypeArray: typeBytes[a[0]] = typeBytes[a[1]] * constants[a[2]]; break;
      case OpTypeRuntimeArray: typeBytes[a[0]] = 0; break;
      case OpTypeStruct: {
        // Natural layout: each member aligned to its own size (at most 16); a cross-check only.
        uint64_t off = 0;
        for (uint32_t m = 1; m < n - 1; m++) {
          uint64_t b = typeBytes[a[m]], al = std::min<uint64_t>(16, std::max<uint64_t>(1, b));
          off = (off + al - 1) / al * al + b;
        }
        typeBytes[a[0]] = off;
        break;
      }
      case OpTypePointer: pointers[a[0]] = {a[1], a[2]}; break;
      case OpVariable: variables.push_back({a[0], a[1]}); break;
      default: break;
    }
    i += n;
  }
  for (auto [ptype, id] : variables) {
    auto p = pointers.find(ptype);
    if (p == pointers.end()) continue;
    const uint32_t sc = p->second.sc, pointee = p->second.type;
    if (sc == SCWorkgroup) info.workgroupBytes += typeBytes[pointee];
    if (sc == SCPushConstant) info.pushConstantBytes = std::max<uint32_t>(info.pushConstantBytes, static_cast<uint32_t>((typeBytes[pointee] + 3) / 4 * 4));
    if ((sc == SCUniform || sc == SCStorageBuffer) && binding.count(id)) {
      Binding b;
      b.set = set[id];
      b.binding = binding[id];
      b.type = sc == SCStorageBuffer || bufferBlock[pointee] ? vkm::DESCRIPTOR_TYPE_STORAGE_BUFFER : vkm::DESCRIPTOR_TYPE_UNIFORM_BUFFER;
      info.bindings.push_back(b);
    }
  }
  std::sort(info.bindings.begin(), info.bindings.end(), [](const Binding& x, const Binding& y) { return x.set != y.set ? x.set < y.set : x.binding < y.binding; });
  return info;
}

bool writeFile(const std::string& path, const void* data, size_t bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(data, 1, bytes, f) == bytes;
  return std::fclose(f) == 0 && ok;
}

std::string jsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) { o += ' '; continue; }
    o.push_back(c);
  }
  return o;
}

static std::string fileSafe(const std::string& s) {
  std::string o;
  for (char c : s) o.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return o;
}

std::vector<Stat> dumpExecutables(std::FILE* fout, vkm::Device device, vkm::Pipeline pipeline, const StatFns& fns, const std::string& outdir, const std::string& tag) {
  std::vector<Stat> out;
  if (!fns.props || !fns.stats) {
    std::fprintf(fout, "stat %s | (VK_KHR_pipeline_executable_properties is not available on this device)\n", tag.c_str());
    return out;
  }
  vkm::PipelineInfoKHR pi{vkm::st::PIPELINE_INFO_KHR, nullptr, pipeline};
  uint32_t nexe = 0;
  if (fns.props(device, &pi, &nexe, nullptr) != vkm::SUCCESS) {
    std::fprintf(fout, "stat %s | vkGetPipelineExecutablePropertiesKHR failed\n", tag.c_str());
    return out;
  }
  std::vector<vkm::PipelineExecutablePropertiesKHR> props(nexe);
  for (auto& p : props) p = {vkm::st::PIPELINE_EXECUTABLE_PROPERTIES_KHR, nullptr, 0, {}, {}, 0};
  fns.props(device, &pi, &nexe, props.data());
  for (uint32_t e = 0; e < nexe; e++) {
    std::fprintf(fout, "stat %s %u | executable '%s' (%s), subgroup size %u\n", tag.c_str(), e, props[e].name, props[e].description, props[e].subgroupSize);
    vkm::PipelineExecutableInfoKHR ei{vkm::st::PIPELINE_EXECUTABLE_INFO_KHR, nullptr, pipeline, e};
    uint32_t ns = 0;
    fns.stats(device, &ei, &ns, nullptr);
    std::vector<vkm::PipelineExecutableStatisticKHR> stats(ns);
    for (auto& s : stats) { std::memset(&s, 0, sizeof s); s.sType = vkm::st::PIPELINE_EXECUTABLE_STATISTIC_KHR; }
    fns.stats(device, &ei, &ns, stats.data());
    for (uint32_t k = 0; k < ns; k++) {
      const auto& s = stats[k];
      Stat r{props[e].name, s.name, s.description, "", 0};
      char buf[64];
      switch (s.format) {
        case vkm::STAT_FORMAT_BOOL32: r.number = s.value.b32; std::snprintf(buf, sizeof buf, "%s", s.value.b32 ? "true" : "false"); break;
        case vkm::STAT_FORMAT_INT64: r.number = static_cast<double>(s.value.i64); std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(s.value.i64)); break;
        case vkm::STAT_FORMAT_UINT64: r.number = static_cast<double>(s.value.u64); std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(s.value.u64)); break;
        default: r.number = s.value.f64; std::snprintf(buf, sizeof buf, "%g", s.value.f64); break;
      }
      r.value = buf;
      std::fprintf(fout, "stat %s %u | %s = %s   (%s)\n", tag.c_str(), e, s.name, buf, s.description);
      out.push_back(r);
    }
    if (!fns.reprs) continue;
    uint32_t nr = 0;
    fns.reprs(device, &ei, &nr, nullptr);
    std::vector<vkm::PipelineExecutableInternalRepresentationKHR> reprs(nr);
    for (auto& r : reprs) { std::memset(&r, 0, sizeof r); r.sType = vkm::st::PIPELINE_EXECUTABLE_INTERNAL_REPRESENTATION_KHR; }
    fns.reprs(device, &ei, &nr, reprs.data());  // sizes
    std::vector<std::vector<char>> data(nr);
    for (uint32_t k = 0; k < nr; k++) { data[k].resize(reprs[k].dataSize + 1); reprs[k].pData = data[k].data(); }
    if (nr) fns.reprs(device, &ei, &nr, reprs.data());
    for (uint32_t k = 0; k < nr; k++) {
      const std::string path = outdir + "/" + tag + "." + std::to_string(e) + "." + fileSafe(reprs[k].name) + (reprs[k].isText ? ".txt" : ".bin");
      writeFile(path, data[k].data(), reprs[k].dataSize);
      std::fprintf(fout, "stat %s %u | internal representation '%s' (%s): %zu bytes -> %s\n", tag.c_str(), e, reprs[k].name, reprs[k].description, reprs[k].dataSize, path.c_str());
    }
  }
  return out;
}

int saveCache(std::FILE* fout, vkm::Device device, vkm::PipelineCache cache, const StatFns& fns, const std::string& outdir, const std::string& tag) {
  if (!fns.cacheData || !cache) return 0;
  size_t size = 0;
  if (fns.cacheData(device, cache, &size, nullptr) != vkm::SUCCESS || size == 0) return 0;
  std::vector<uint8_t> blob(size);
  if (fns.cacheData(device, cache, &size, blob.data()) != vkm::SUCCESS) return 0;
  writeFile(outdir + "/" + tag + ".cache", blob.data(), size);
  // ELF64 images: size from the section header table, which ends the file as linkers write it.
  int found = 0;
  for (size_t i = 0; i + 64 <= size; i++) {
    if (std::memcmp(&blob[i], "\x7f" "ELF", 4) != 0 || blob[i + 4] != 2) continue;
    uint64_t shoff, phoff;
    uint16_t shentsize, shnum, phentsize, phnum;
    std::memcpy(&phoff, &blob[i + 0x20], 8);
    std::memcpy(&shoff, &blob[i + 0x28], 8);
    std::memcpy(&phentsize, &blob[i + 0x36], 2);
    std::memcpy(&phnum, &blob[i + 0x38], 2);
    std::memcpy(&shentsize, &blob[i + 0x3a], 2);
    std::memcpy(&shnum, &blob[i + 0x3c], 2);
    const uint64_t end = std::max<uint64_t>(shoff + uint64_t(shentsize) * shnum, phoff + uint64_t(phentsize) * phnum);
    if (end < 64 || i + end > size) continue;
    const std::string path = outdir + "/" + tag + "." + std::to_string(found) + ".elf";
    writeFile(path, &blob[i], end);
    std::fprintf(fout, "cache %s | ELF image %d: %llu bytes at offset %zu -> %s\n", tag.c_str(), found, static_cast<unsigned long long>(end), i, path.c_str());
    found++;
    i += end - 1;
  }
  std::fprintf(fout, "cache %s | pipeline cache %zu bytes, %d ELF image(s)\n", tag.c_str(), size, found);
  return found;
}

double findStat(const std::vector<Stat>& stats, const std::vector<std::string>& needles) {
  for (const auto& s : stats) {
    std::string n = s.name;
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const auto& w : needles)
      if (n.find(w) != std::string::npos) return s.number;
  }
  return -1;
}

void printOccupancy(std::FILE* fout, const std::string& tag, double regsPerThread, uint64_t workgroupBytes, uint32_t lanes) {
  // sm_90 multiprocessor (CUDA occupancy tables): 65536 registers allocated per warp in units of
  // 256, 64 warps, 32 resident blocks, 228 KiB of shared memory with 1 KiB reserved per block,
  // allocated in units of 128 bytes.
  const int warps = static_cast<int>((lanes + 31) / 32);
  // Unknown registers (no statistic) leave that limit out.
  int byRegs = 1 << 20;
  if (regsPerThread > 0) {
    const int perWarp = static_cast<int>(std::ceil(regsPerThread * 32 / 256.0)) * 256;
    byRegs = 65536 / (perWarp * warps);
  }
  const uint64_t smem = (workgroupBytes + 1024 + 127) / 128 * 128;
  const int bySmem = static_cast<int>(233472 / smem);
  const int byWarps = 64 / warps;
  const int blocks = std::min({byRegs, bySmem, byWarps, 32});
  const char* limit = blocks == byRegs ? "registers" : blocks == bySmem ? "workgroup memory" : blocks == byWarps ? "warps" : "32 workgroups per SM";
  std::fprintf(fout, "occupancy %s | sm_90: %d workgroup(s) of %d warp(s) = %d warps per SM (limited by %s; registers %s, workgroup memory %d of %llu B, warps %d)\n",
               tag.c_str(), blocks, warps, blocks * warps, limit, regsPerThread > 0 ? std::to_string(byRegs).c_str() : "unknown", bySmem,
               static_cast<unsigned long long>(workgroupBytes), byWarps);
}

}  // namespace vks
