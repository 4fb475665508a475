// Streaming-read bandwidth of this machine (stream_read.h), for benchmarks that compare a
// memory-bound kernel against it in the same run (scripts/bench-cpu-decode.mjs).
// Usage: stream_read [--mib 512] [--threads 2] [--passes 5] [--huge 0|1]; prints one JSON line.
#include <cstdio>
#include <string>

#include "stream_read.h"

int main(int argc, char** argv) {
  size_t mib = 512; int threads = 2, passes = 5; bool huge = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--mib") mib = (size_t)std::atoll(argv[i + 1]);
    else if (k == "--threads") threads = std::atoi(argv[i + 1]);
    else if (k == "--passes") passes = std::atoi(argv[i + 1]);
    else if (k == "--huge") huge = std::atoi(argv[i + 1]) != 0;
  }
  const size_t bytes = mib << 20;
  uint8_t* buf = (uint8_t*)bench_alloc(bytes, huge);
  if (!buf) { std::fprintf(stderr, "stream_read: out of memory\n"); return 1; }
  const double gbs = stream_read_gbs(buf, bytes, threads, passes);
  std::printf("{\"threads\":%d,\"mib\":%zu,\"hugePages\":%s,\"gbPerS\":%.3f}\n", threads, mib, huge ? "true" : "false", gbs);
  std::free(buf);
  return 0;
}
