// The run directory a training writes, and what eval, score and the embedding API read:
//   RUN/run.json                configuration, versions, SHA-256 of data, teacher and student,
//                               score rule and its calibration, validation thresholds;
//                               format_version 1
//   RUN/student.safetensors     PyTorch state_dict names (MKD's load_state_dict reads it)
//   RUN/checkpoint.safetensors  student + Adam state after the last checkpointed epoch
//   RUN/train_log.jsonl         one line per epoch
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "morphokd/data/transform.hpp"
#include "morphokd/method/score_rule.hpp"
#include "morphokd/pipeline/detector.hpp"
#include "morphokd/tensor.hpp"

namespace morphokd::pipeline {

constexpr int kRunFormatVersion = 1;

struct TrainConfig {
  std::string part = "head";
  std::string data_dir = "data/mhsma";
  std::string teacher = "random:0";
  std::string student = "B";
  int epochs = 15;
  Index batch = 64;
  double lr = 1e-3;
  float lambda = 0.01f;
  std::vector<int> train_layers{2, 3, 4, 5};
  std::vector<int> score_layers{2, 3, 4, 5};  // selected on valid (README); MKD scores 3,4,5
  std::uint64_t seed = 0;
  std::string augment = "flip";  // exact symmetries, cacheable targets; rotate on request
  std::string input_norm = "image";  // selected on valid (README); MKD's x/255 is "none"
  std::string score = "sum";         // score rule (method/score_rule.hpp): sum | layer-z
  std::string tta = "flip";          // none | flip; selected on valid
  bool shuffle = true;
  std::int64_t steps = 0;        // > 0: stop after this many optimizer steps (audit replay)
  std::string student_init;      // safetensors to start from; empty: Xavier-uniform from `seed`
  int checkpoint_every = 1;      // epochs
  int valid_every = 1;           // epochs between valid AUCs in the log (and the last); 0: none
  double cache_limit_gb = 4.0;   // teacher-target cache budget; above it targets are recomputed
  bool dump_grads = false;       // audit: RUN/grad_step{k}.safetensors, parameter gradients of step k
  double fgsm_eps = 0.0;         // > 0: adversarial training, FGSM at this eps (pixel units of [0, 1])
  std::string fgsm_mix = "both"; // both: each batch and its attacked copy in one step; adv: attacked only
  std::string precision = "fp32";  // the teacher's forward passes (targets, scores): fp32 | fp32-winograd | bf16
};

struct RunInfo {
  TrainConfig config;
  data::InputTransform input;
  method::ScoreRule rule;  // calibrated on the validation split at the end of training
  std::string teacher_sha256, student_sha256;
  std::map<std::string, double> thresholds;  // rule -> threshold fitted on the validation split
  std::map<std::string, std::string> data_sha256;  // file name -> hash, for the files training read
};

// Every option in range and known (Error naming the option, e.g. "--epochs must be ...").
void check_config(const TrainConfig& c);
// What this machine cannot run although the configuration is valid (bf16 or fp32-winograd
// without their instructions): checked before a run starts, not when a run is read.
void check_runs_here(const TrainConfig& c);

// The configuration in RUN/run.json, finished or not (for --resume), checked as above.
TrainConfig read_run_config(const std::string& run_dir);

// Reads and checks RUN/run.json of a finished run; Errors name the file (missing, malformed, newer format).
RunInfo read_run(const std::string& run_dir);
// The same checks on run.json's bytes; `path` names them in errors (the fuzzed entry).
RunInfo parse_run(std::span<const std::byte> bytes, const std::string& path);

// The run's detector: teacher re-opened from its spec, student from student.safetensors;
// both SHA-256 are checked against run.json (Error naming the file on a mismatch).
// teacher_channels: 0 for what the input transform needs; 3 keeps the teacher's 3-channel
// first conv (per-channel input gradients).
std::unique_ptr<Detector> open_detector(const std::string& run_dir, const RunInfo& run, int teacher_channels = 0);

}  // namespace morphokd::pipeline
