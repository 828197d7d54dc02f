#include "morphokd/models/onnx_import.hpp"

#include <cstring>
#include <filesystem>

#include "morphokd/error.hpp"
#include "morphokd_build_config.hpp"

#if MORPHOKD_HAS_OPENCV
#include <opencv2/dnn.hpp>
#include <opencv2/dnn/all_layers.hpp>
#endif

namespace morphokd::models {

#if MORPHOKD_HAS_OPENCV
namespace {

// OpenCV's internal PoolingLayer type code for max pooling (MAX = 0 in pooling_layer.cpp).
constexpr int kOpenCvMaxPool = 0;

bool all_equal(const std::vector<std::size_t>& v, std::size_t n, std::size_t value) {
  if (v.size() != n) return false;
  for (std::size_t x : v)
    if (x != value) return false;
  return true;
}

// A weight blob as a float32 tensor of the given shape (copied: the Net owns the blob).
StEntry to_entry(const cv::Mat& blob, std::vector<Index> shape) {
  cv::Mat f;
  blob.convertTo(f, CV_32F);
  f = f.isContinuous() ? f : f.clone();
  StEntry e;
  e.shape = std::move(shape);
  e.values = Tensor::empty(Shape(std::span<const Index>(e.shape)));
  std::memcpy(e.values.data(), f.ptr<float>(), sizeof(float) * f.total());
  return e;
}

// One line without the path: OpenCV's messages span lines, repeat the file name and
// quote the failing node between '>' marks.
std::string one_line(std::string s, const std::string& path) {
  if (const std::size_t at = s.find(path); at != std::string::npos) s.erase(at, path.size());
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  const std::size_t begin = s.find_first_not_of(" >:"), end = s.find_last_not_of(" >:");
  return begin == std::string::npos ? "unknown error" : s.substr(begin, end - begin + 1);
}

}  // namespace
#endif

SafetensorsFile import_vgg_onnx(const std::string& path) {
#if MORPHOKD_HAS_OPENCV
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path + ": no such file");
  cv::dnn::Net net;
  try {
    net = cv::dnn::readNetFromONNX(path);
  } catch (const cv::Exception& e) {
    fail(path + ": cannot read ONNX model: " + one_line(e.err, path));
  }
  // OpenCV fuses Conv+ReLU only when it sets up the net for a forward pass, which never
  // happens here; disabling it keeps every ReLU a layer of its own regardless.
  net.enableFusion(false);

  SafetensorsFile out;
  Index index = 0;         // torchvision module index of the next layer
  Index channels = -1;     // output channels of the last conv
  std::string open_conv;   // name of the last layer if it was a conv: a ReLU must follow
  for (const std::string& name : net.getLayerNames()) {
    const cv::Ptr<cv::dnn::Layer> layer = net.getLayer(name);
    const std::string where = path + ": layer " + quote(name) + " (" + layer->type + ")";
    if (!open_conv.empty() && layer->type != "ReLU")
      fail(path + ": layer " + quote(open_conv) + " (Convolution) is followed by " + quote(name) + " (" + layer->type +
           "), not a ReLU");
    if (layer->type == "Convolution") {
      const auto* conv = dynamic_cast<const cv::dnn::ConvolutionLayer*>(layer.get());
      check(conv && all_equal(conv->kernel_size, 2, 3) && all_equal(conv->strides, 2, 1) &&
                all_equal(conv->pads_begin, 2, 1) && all_equal(conv->pads_end, 2, 1) && all_equal(conv->dilations, 2, 1),
            where + ": expected a 3x3 conv with stride 1, padding 1, no dilation");
      check(layer->blobs.size() == 2, where + ": expected constant weights and a bias");
      const cv::Mat& w = layer->blobs[0];
      check(w.dims == 4 && w.size[2] == 3 && w.size[3] == 3, where + ": weights are not [Cout, Cin, 3, 3]");
      const Index cout = w.size[0], cin = w.size[1];
      check(channels < 0 || cin == channels,
            where + ": " + std::to_string(cin) + " input channels after a conv with " + std::to_string(channels));
      check(layer->blobs[1].total() == static_cast<std::size_t>(cout), where + ": bias does not have Cout values");
      const std::string prefix = "features." + std::to_string(index);
      out.tensors[prefix + ".weight"] = to_entry(w, {cout, cin, 3, 3});
      out.tensors[prefix + ".bias"] = to_entry(layer->blobs[1], {cout});  // OpenCV stores it as [Cout, 1]
      channels = cout;
      open_conv = name;
    } else if (layer->type == "ReLU") {
      // ONNX LeakyRelu also becomes an OpenCV "ReLU", with a negative slope.
      const auto* relu = dynamic_cast<const cv::dnn::ReLULayer*>(layer.get());
      check(relu && relu->negativeSlope == 0.0f, where + ": expected a plain ReLU (negative slope 0)");
      open_conv.clear();
    } else if (layer->type == "Pooling") {
      const auto* pool = dynamic_cast<const cv::dnn::PoolingLayer*>(layer.get());
      check(pool && pool->type == kOpenCvMaxPool && !pool->globalPooling && !pool->ceilMode &&
                all_equal(pool->kernel_size, 2, 2) && all_equal(pool->strides, 2, 2) &&
                all_equal(pool->pads_begin, 2, 0) && all_equal(pool->pads_end, 2, 0),
            where + ": expected a 2x2 max-pool with stride 2 and no padding");
    } else {
      break;  // the end of the features (flatten, classifier, ...)
    }
    ++index;
  }
  check(open_conv.empty(), path + ": layer " + quote(open_conv) + " (Convolution) ends the network, without a ReLU");
  check(!out.tensors.empty(), path + ": no Conv layers at the start of the network");
  return out;
#else
  fail(path + ": ONNX import needs a build with MORPHOKD_WITH_OPENCV=ON");
#endif
}

}  // namespace morphokd::models
