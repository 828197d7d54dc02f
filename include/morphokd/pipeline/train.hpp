// Training a student on the normal cells of one part (METHOD.md): Adam on the distillation
// loss at the training critical layers, teacher frozen, student BatchNorm in training mode.
#pragma once
#include <memory>
#include <string>

#include "morphokd/nn/optim.hpp"
#include "morphokd/pipeline/run.hpp"

namespace morphokd::pipeline {

// Trains and writes RUN (see run.hpp). With `resume`, continues from
// RUN/checkpoint.safetensors (its seal checked), or starts over when a run was stopped
// before its first checkpoint; `config` is then RUN/run.json's, with epochs possibly raised.
void train(const TrainConfig& config, const std::string& run_dir, bool resume);

// The student's optimiser as train() builds it: Adam over every parameter, no weight decay.
std::unique_ptr<nn::Adam> make_student_adam(nn::Sequential& student, double lr);

}  // namespace morphokd::pipeline
