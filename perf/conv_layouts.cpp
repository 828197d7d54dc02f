// What keeping oneDNN's blocked layouts between the student's layers would save: every 3x3
// convolution of a student (default B) at batch 64, one training step's worth of work per
// iteration (forward, backward data, backward weights), in three layouts:
//   nchw_reorders  our ops today: NCHW buffers, reordered into and out of the kernel's layout
//   blocked_kept   activations and their gradients already in the kernel's layouts (weights
//                  and weight gradients still reordered: the optimiser works on plain ones)
//   nchw_plain     NCHW descriptors, no reorders (oneDNN then picks im2col + GEMM)
// Threads: OMP_NUM_THREADS. Flags before Google Benchmark's own: --student=A|B|C, --batch=N.
#include <benchmark/benchmark.h>

#include <dnnl.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "morphokd/models/students.hpp"

using namespace morphokd;
using dnnl::memory;
using tag = memory::format_tag;

namespace {

enum class Layout { nchw_reorders, blocked_kept, nchw_plain };
const char* layout_name(Layout l) {
  switch (l) {
    case Layout::nchw_reorders: return "nchw_reorders";
    case Layout::blocked_kept: return "blocked_kept";
    case Layout::nchw_plain: return "nchw_plain";
  }
  return "";
}

struct ConvShape {
  memory::dim n, ic, oc, hw;
};

// The three primitive descriptors of one layer, forward as the backward ones' hint.
struct Step {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dnnl::convolution_forward::primitive_desc fwd;
  dnnl::convolution_backward_data::primitive_desc bwd_data;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights;

  Step(const ConvShape& s, Layout layout) {
    const memory::dims x{s.n, s.ic, s.hw, s.hw}, w{s.oc, s.ic, 3, 3}, y{s.n, s.oc, s.hw, s.hw}, stride{1, 1}, pad{1, 1};
    const tag act = layout == Layout::nchw_plain ? tag::nchw : tag::any;
    const memory::desc xd(x, memory::data_type::f32, act), yd(y, memory::data_type::f32, act),
        wd(w, memory::data_type::f32, tag::any);
    const auto alg = dnnl::algorithm::convolution_direct;
    fwd = {{dnnl::prop_kind::forward_training, alg, xd, wd, memory::desc(), yd, stride, pad, pad}, eng};
    bwd_data = {{alg, xd, wd, yd, stride, pad, pad}, eng, fwd};
    bwd_weights = {{alg, xd, wd, yd, stride, pad, pad}, eng, fwd};
  }
};

void conv_step(benchmark::State& state, ConvShape s, Layout layout) {
  Step st(s, layout);
  const bool user_blocked = layout == Layout::blocked_kept;
  auto buffer = [&](const memory::desc& d) {
    memory m(d, st.eng);
    float* p = static_cast<float*>(m.get_data_handle());
    for (std::size_t i = 0; i < d.get_size() / sizeof(float); ++i) p[i] = static_cast<float>(i % 7) * 0.01f;
    return m;
  };
  const memory::desc x_plain({s.n, s.ic, s.hw, s.hw}, memory::data_type::f32, tag::nchw),
      y_plain({s.n, s.oc, s.hw, s.hw}, memory::data_type::f32, tag::nchw),
      w_plain({s.oc, s.ic, 3, 3}, memory::data_type::f32, tag::oihw);
  // The user's buffers: x, y, dy, dx in NCHW or in the kernel's layouts; w and dw plain.
  memory x = buffer(user_blocked ? st.fwd.src_desc() : x_plain), y = buffer(user_blocked ? st.fwd.dst_desc() : y_plain),
         dy = buffer(user_blocked ? st.bwd_data.diff_dst_desc() : y_plain),
         dx = buffer(user_blocked ? st.bwd_data.diff_src_desc() : x_plain), w = buffer(w_plain), dw = buffer(w_plain);
  // `user` as the primitive wants `want`: itself, or a reorder into a planned buffer.
  auto in = [&](const memory& user, const memory::desc& want) {
    if (user.get_desc() == want) return std::pair<memory, bool>{user, false};
    return std::pair<memory, bool>{buffer(want), true};
  };
  auto [x_f, rx_f] = in(x, st.fwd.src_desc());
  auto [w_f, rw_f] = in(w, st.fwd.weights_desc());
  auto [y_f, ry_f] = in(y, st.fwd.dst_desc());
  auto [dy_d, rdy_d] = in(dy, st.bwd_data.diff_dst_desc());
  auto [w_d, rw_d] = in(w, st.bwd_data.weights_desc());
  auto [dx_d, rdx_d] = in(dx, st.bwd_data.diff_src_desc());
  auto [x_w, rx_w] = in(x, st.bwd_weights.src_desc());
  auto [dy_w, rdy_w] = in(dy, st.bwd_weights.diff_dst_desc());
  auto [dw_w, rdw_w] = in(dw, st.bwd_weights.diff_weights_desc());
  const dnnl::convolution_forward fwd(st.fwd);
  const dnnl::convolution_backward_data bwd_data(st.bwd_data);
  const dnnl::convolution_backward_weights bwd_weights(st.bwd_weights);
  auto reorder = [&](memory& from, memory& to) { dnnl::reorder(from, to).execute(st.strm, from, to); };
  for (auto _ : state) {
    if (rx_f) reorder(x, x_f);
    if (rw_f) reorder(w, w_f);
    fwd.execute(st.strm, {{DNNL_ARG_SRC, x_f}, {DNNL_ARG_WEIGHTS, w_f}, {DNNL_ARG_DST, y_f}});
    if (ry_f) reorder(y_f, y);
    if (rdy_d) reorder(dy, dy_d);
    if (rw_d) reorder(w, w_d);
    bwd_data.execute(st.strm, {{DNNL_ARG_DIFF_DST, dy_d}, {DNNL_ARG_WEIGHTS, w_d}, {DNNL_ARG_DIFF_SRC, dx_d}});
    if (rdx_d) reorder(dx_d, dx);
    if (rx_w) reorder(x, x_w);
    if (rdy_w) reorder(dy, dy_w);
    bwd_weights.execute(st.strm, {{DNNL_ARG_SRC, x_w}, {DNNL_ARG_DIFF_DST, dy_w}, {DNNL_ARG_DIFF_WEIGHTS, dw_w}});
    if (rdw_w) reorder(dw_w, dw);
    st.strm.wait();
  }
  state.SetLabel(std::string(st.fwd.impl_info_str()) + " / " + st.bwd_data.impl_info_str() + " / " +
                 st.bwd_weights.impl_info_str());
  state.counters["img_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * s.n),
                                                   benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  std::string student = "B";
  memory::dim batch = 64;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--student=", 10) == 0) student = argv[i] + 10;
    else if (std::strncmp(argv[i], "--batch=", 8) == 0) batch = std::stoi(argv[i] + 8);
    else rest.push_back(argv[i]);
  }
  // The student's convolutions from its spec: 3 input channels, 64x64, halved at each pool.
  memory::dim channels = 3, hw = 64;
  int index = 0;
  for (int width : models::student_spec(student).cfg) {
    if (width == models::kPool) {
      hw /= 2;
      continue;
    }
    const ConvShape s{batch, channels, width, hw};
    for (Layout l : {Layout::nchw_reorders, Layout::blocked_kept, Layout::nchw_plain}) {
      const std::string name = "conv" + std::to_string(index) + "/" + std::to_string(s.ic) + "x" +
                               std::to_string(s.oc) + "@" + std::to_string(hw) + "/" + layout_name(l);
      benchmark::RegisterBenchmark(name.c_str(), conv_step, s, l)->Unit(benchmark::kMillisecond)->UseRealTime();
    }
    channels = width;
    ++index;
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
