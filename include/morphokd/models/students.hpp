// The students of METHOD.md: convs without bias, Xavier-uniform; a conv directly before a
// pool is followed by ReLU only, every other conv by BatchNorm + ReLU (MKD's make_layers).
//   A (our choice, "a simple network"): 16,M,128,M,256,M,512,M,512,M, no BatchNorm
//   B (proposed, MKD's cloner):         16,16,M,16,128,M,16,16,256,M,16,16,512,M,16,16,512,M
//   C (same as the teacher):            64,64,M,128,128,M,256,256,256,M,512,512,512,M,512,512,512,M
// Pool k of every student has the teacher's channel count, so critical layers line up.
#pragma once
#include <string>

#include "morphokd/models/vgg.hpp"

namespace morphokd::models {

// "A", "B" or "C"; anything else is an Error naming the option.
const VggSpec& student_spec(const std::string& name);

}  // namespace morphokd::models
