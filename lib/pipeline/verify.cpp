#include "morphokd/pipeline/verify.hpp"

#include <filesystem>

#include "morphokd/error.hpp"
#include "morphokd/io/safetensors.hpp"
#include "morphokd/io/sha256.hpp"
#include "morphokd/models/teacher.hpp"
#include "run_json.hpp"

namespace morphokd::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// An Error's message without its leading "PATH: ": the report prints the path itself.
std::string problem_of(const Error& e, const std::string& path) {
  const std::string m = e.what(), prefix = path + ": ";
  return m.rfind(prefix, 0) == 0 ? m.substr(prefix.size()) : m;
}

// `hash` computes the file's SHA-256 now; an Error from it is the check's problem.
template <class Hash>
FileCheck check_hash(const std::string& role, const std::string& path, const std::string& expected, Hash hash) {
  FileCheck c{role, path, expected, "", ""};
  try {
    c.actual = hash();
  } catch (const Error& e) {
    c.problem = problem_of(e, path);
    return c;
  }
  if (c.actual != expected) c.problem = "SHA-256 differs from the record";
  return c;
}

FileCheck check_file(const std::string& role, const std::string& path, const std::string& expected) {
  return check_hash(role, path, expected, [&] { return sha256_file(path); });
}

std::string recorded(const json& j, const std::string& where) {
  if (!j.is_string()) fail(where + ": recorded SHA-256 is not a string");
  return j.get<std::string>();
}

}  // namespace

VerifyReport verify_run(const std::string& run_dir) {
  const fs::path dir(run_dir);
  const std::string run_path = (dir / "run.json").string();
  if (!fs::exists(run_path)) fail(run_dir + ": not a run directory (no run.json)");
  const json run = read_json(run_path);
  VerifyReport report;
  std::vector<FileCheck>& out = report.files;
  try {
    for (auto& [name, d] : run.at("data").items())
      out.push_back(check_file("data", d.at("path").get<std::string>(), recorded(d.at("sha256"), run_path)));
    const json& config = run.at("config");
    const std::string teacher = run.at("teacher").at("spec").get<std::string>();
    out.push_back(check_hash("teacher", teacher, recorded(run.at("teacher").at("sha256"), run_path),
                             [&] { return models::teacher_sha256(teacher); }));
    if (const std::string init = config.value("student_init", ""); !init.empty())
      out.push_back(check_file("student init", init, recorded(run.at("student_init_sha256"), run_path)));
    for (const char* role : {"student", "checkpoint", "train_log"})
      if (run.contains(role))
        out.push_back(check_file(role, (dir / run.at(role).at("file").get<std::string>()).string(),
                                 recorded(run.at(role).at("sha256"), run_path)));
  } catch (const json::exception& e) {
    fail(run_path + ": malformed run file: " + e.what());
  }
  report.finished = run.value("status", "") == "done";
  // The checkpoint's own seal: for a run still training, the only record of its checkpoint.
  const std::string ckpt = (dir / "checkpoint.safetensors").string();
  if (fs::exists(ckpt)) {
    FileCheck c{"checkpoint seal", ckpt, "", "", ""};
    try {
      check_seal(read_safetensors(ckpt), ckpt);
    } catch (const Error& e) {
      c.problem = problem_of(e, ckpt);
    }
    out.push_back(c);
  }
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("eval_", 0) != 0 || entry.path().extension() != ".json") continue;
    const json e = read_json(entry.path().string());
    if (!e.contains("scores_csv")) continue;
    try {
      out.push_back(check_file("scores", (dir / e.at("scores_csv").at("file").get<std::string>()).string(),
                               recorded(e.at("scores_csv").at("sha256"), entry.path().string())));
    } catch (const json::exception& ex) {
      fail(entry.path().string() + ": malformed eval record: " + ex.what());
    }
  }
  return report;
}

}  // namespace morphokd::pipeline
