// Links the installed static libmorphokd and runs a conv on both backends.
#include <morphokd/ops/ops.hpp>
#include <morphokd/runtime.hpp>

#include <cmath>
#include <cstdio>

int main() {
  using namespace morphokd;
  Tensor x = Tensor::full({1, 2, 4, 4}, 1.0f), w = Tensor::full({3, 2, 3, 3}, 0.5f), y = Tensor::empty({1, 3, 4, 4});
  for (Backend b : {Backend::reference, Backend::onednn}) {
    if (!backend_available(b)) continue;
    set_backend(b);
    ops::conv2d_forward(x, w, nullptr, y);
    // Interior pixel: 2 channels x 9 taps x 0.5; corner: 2 x 4 x 0.5.
    if (y.data()[5] != 9.0f || y.data()[0] != 4.0f) {
      std::printf("wrong result on %s\n", std::string(backend_name(b)).c_str());
      return 1;
    }
  }
  std::printf("consumer ok: %s\n", build_info().c_str());
  return 0;
}
