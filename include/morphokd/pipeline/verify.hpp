// `morphokd verify RUN`: re-hashes every file a run's records name and compares each with
// the SHA-256 recorded for it: the data files, the teacher (file, or regenerated weights),
// the student's initial weights, student.safetensors, the checkpoint (also against its own
// seal), the training log, and each eval's scores CSV (recorded in eval_SPLIT.json).
#pragma once
#include <string>
#include <vector>

namespace morphokd::pipeline {

struct FileCheck {
  std::string role;      // "data", "teacher", "student", "checkpoint", "train log", "scores", ...
  std::string path;
  std::string expected;  // recorded SHA-256
  std::string actual;    // SHA-256 now, empty when the file could not be read
  std::string problem;   // empty when the file matches
};

struct VerifyReport {
  std::vector<FileCheck> files;
  bool finished = false;  // training done; an unfinished run has no final hashes yet
};

// Errors (naming the file) when run.json itself is missing or malformed.
VerifyReport verify_run(const std::string& run_dir);

}  // namespace morphokd::pipeline
