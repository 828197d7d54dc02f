// A one-line progress bar on stderr (rate and ETA), drawn only when stderr is a terminal
// so logs stay clean; finish() erases it. A bar made while another is alive stays silent:
// an experiment's bar over the whole grid is the only one its training runs show.
#pragma once
#include <chrono>
#include <string>

namespace morphokd::pipeline {

class Progress {
 public:
  Progress(std::string label, long total, const char* unit);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void advance(long n);
  void finish();
  double seconds() const;

 private:
  std::string label_;
  long total_, done_ = 0;
  const char* unit_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace morphokd::pipeline
