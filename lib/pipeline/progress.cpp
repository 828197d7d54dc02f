#include "morphokd/pipeline/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace morphokd::pipeline {

namespace {
int g_alive = 0;  // bars alive now; bars are made and ended on the main thread only
}  // namespace

Progress::Progress(std::string label, long total, const char* unit)
    : label_(std::move(label)), total_(total), unit_(unit), enabled_(g_alive++ == 0 && ::isatty(2) != 0),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { --g_alive; }

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(long n) {
  done_ += n;
  if (!enabled_) return;
  const double t = seconds(), rate = t > 0 ? static_cast<double>(done_) / t : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0.0;
  const int width = 30, filled = total_ > 0 ? static_cast<int>(width * done_ / total_) : width;
  std::fprintf(stderr, "\r%s [%.*s%*s] %ld/%ld %.1f %s/s ETA %.0fs ", label_.c_str(), filled,
               "##############################", width - filled, "", done_, total_, rate, unit_, eta);
  std::fflush(stderr);
}

void Progress::finish() {
  if (enabled_) std::fprintf(stderr, "\r%*s\r", 100, "");
}

}  // namespace morphokd::pipeline
