#include "morphokd/models/students.hpp"

#include "morphokd/error.hpp"

namespace morphokd::models {

const VggSpec& student_spec(const std::string& name) {
  constexpr int M = kPool;
  static const VggSpec a{{16, M, 128, M, 256, M, 512, M, 512, M}, false, false};
  static const VggSpec b{{16, 16, M, 16, 128, M, 16, 16, 256, M, 16, 16, 512, M, 16, 16, 512, M}, false, true};
  static const VggSpec c{{64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M}, false, true};
  if (name == "A") return a;
  if (name == "B") return b;
  if (name == "C") return c;
  fail("--student: unknown student " + quote(name) + " (expected A, B or C)");
}

}  // namespace morphokd::models
