// run.json encoding, shared by training (writes) and run.cpp (reads). Private to lib/.
#pragma once
#include <cstddef>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "morphokd/pipeline/run.hpp"

namespace morphokd::pipeline {

nlohmann::json config_to_json(const TrainConfig& c);
TrainConfig config_from_json(const nlohmann::json& j, const std::string& source);
void write_json_atomic(const std::string& path, const nlohmann::json& j);
// A JSON object, or an Error naming `name`; read_json reads the file first.
nlohmann::json parse_json_object(std::span<const std::byte> bytes, const std::string& name);
nlohmann::json read_json(const std::string& path);
// Thresholds may be -inf ("call every cell abnormal"), which JSON numbers cannot hold.
nlohmann::json threshold_to_json(double t);
double threshold_from_json(const nlohmann::json& j);

}  // namespace morphokd::pipeline
