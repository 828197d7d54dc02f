// `morphokd pretrain-teacher`: makes a VGG16 teacher offline, with morphokd's own training
// stack, for machines that cannot download ImageNet weights.
//   fashion-mnist  supervised, 10 classes, on Debian's dataset-fashion-mnist IDX files
//                  (28x28 images centred on a 32x32 canvas)
//   cells-ssl      self-supervised rotation prediction (data/pretext.hpp) on the unlabelled
//                  MHSMA train and valid images; test images are never read
// The net is VGG16 with BatchNorm after every conv not followed by a pool, then global average
// pool and a linear head; SGD with momentum and a cosine learning-rate schedule. The result is
// exported with BatchNorm folded into the convs (models/bn_fold.hpp) as a plain VGG16
// safetensors file with torchvision names, so every teacher path reads it unchanged.
// Files: OUT (the teacher), OUT.checkpoint.safetensors (resumable state), OUT.log.jsonl.
// Given seed, threads and backend the teacher is identical byte for byte.
#pragma once
#include <cstdint>
#include <string>

#include "morphokd/tensor.hpp"

namespace morphokd::pipeline {

struct PretrainConfig {
  std::string dataset = "cells-ssl";  // cells-ssl | fashion-mnist
  std::string data_dir;               // empty: data/mhsma, or /usr/share/datasets/fashion-mnist
  std::string init;                   // plain VGG16 safetensors to continue from; empty: Kaiming init of `seed`
  std::string input_norm = "image";   // data/transform.hpp, as the students will see cells
  int epochs = 12;
  Index batch = 64;
  double lr = 0.02;           // peak of the cosine schedule
  double momentum = 0.9;
  double weight_decay = 5e-4;
  std::uint64_t seed = 0;
  std::int64_t limit = 0;     // > 0: only the first `limit` images
};

// Writes `out` (and its checkpoint and log beside it); resume continues from the checkpoint
// with the configuration stored there. stop_after > 0 ends this call after that many epochs
// in total, leaving only the checkpoint (for time-sliced machines; resume finishes it).
// Returns the teacher file's SHA-256, or "" when stopped early.
std::string pretrain_teacher(const PretrainConfig& c, const std::string& out, bool resume, int stop_after = 0);

}  // namespace morphokd::pipeline
