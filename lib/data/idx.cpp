#include "morphokd/data/idx.hpp"

#include <zlib.h>

#include <filesystem>
#include <memory>

#include "morphokd/error.hpp"

namespace morphokd::data {

namespace {

// Every byte of a plain or gzip file (zlib passes plain files through unchanged).
std::vector<std::uint8_t> read_all(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) fail(path + ": no such file");
  const std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), gzclose);
  if (!f) fail(path + ": cannot open");
  std::vector<std::uint8_t> out;
  std::uint8_t buf[1 << 16];
  for (;;) {
    const int n = gzread(f.get(), buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      fail(path + ": not a readable gzip file (" + gzerror(f.get(), &code) + ")");
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  // gzread stops quietly at a cut-off gzip stream; gzclose_r then reports it.
  int code = 0;
  gzerror(f.get(), &code);
  if (code != Z_OK && code != Z_BUF_ERROR) fail(path + ": corrupt gzip stream");
  return out;
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// "DIR/NAME" or "DIR/NAME.gz", whichever exists.
std::string find_file(const std::string& dir, const std::string& name) {
  const std::filesystem::path p = std::filesystem::path(dir) / name;
  if (std::filesystem::exists(p)) return p.string();
  const std::string gz = p.string() + ".gz";
  if (std::filesystem::exists(gz)) return gz;
  fail(p.string() + "[.gz]: no such file (Debian: apt-get install dataset-fashion-mnist)");
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  const std::vector<std::uint8_t> bytes = read_all(path);
  if (bytes.size() < 4) fail(path + ": too short for an IDX header (" + std::to_string(bytes.size()) + " bytes)");
  if (bytes[0] != 0 || bytes[1] != 0) fail(path + ": not an IDX file (magic must start with two zero bytes)");
  if (bytes[2] != 0x08) fail(path + ": IDX value type 0x" + std::to_string(bytes[2]) + " is not unsigned byte (0x08)");
  const int rank = bytes[3];
  if (rank < 1 || rank > 4) fail(path + ": IDX rank " + std::to_string(rank) + " is not 1..4");
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(rank);
  if (bytes.size() < header) fail(path + ": truncated IDX header");
  IdxArray a;
  std::size_t count = 1;
  for (int d = 0; d < rank; ++d) {
    const std::uint32_t n = be32(bytes.data() + 4 + 4 * d);
    if (n == 0) fail(path + ": IDX dimension " + std::to_string(d) + " is zero");
    a.dims.push_back(n);
    count *= n;
    if (count > (std::size_t{1} << 34)) fail(path + ": IDX sizes are implausibly large");
  }
  if (bytes.size() < header + count)
    fail(path + ": truncated: " + std::to_string(bytes.size() - header) + " value bytes, the header promises " + std::to_string(count));
  if (bytes.size() > header + count)
    fail(path + ": " + std::to_string(bytes.size() - header - count) + " bytes after the last value");
  a.values.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return a;
}

LabelledImages load_idx_dataset(const std::string& dir, const std::string& prefix, std::int64_t limit) {
  const std::string ipath = find_file(dir, prefix + "-images-idx3-ubyte"), lpath = find_file(dir, prefix + "-labels-idx1-ubyte");
  const IdxArray im = read_idx(ipath), lb = read_idx(lpath);
  if (im.dims.size() != 3) fail(ipath + ": images must be a rank-3 IDX array, got rank " + std::to_string(im.dims.size()));
  if (lb.dims.size() != 1) fail(lpath + ": labels must be a rank-1 IDX array, got rank " + std::to_string(lb.dims.size()));
  if (im.dims[0] != lb.dims[0])
    fail(lpath + ": " + std::to_string(lb.dims[0]) + " labels for " + std::to_string(im.dims[0]) + " images in " + ipath);
  const std::int64_t n = limit > 0 ? std::min(limit, im.dims[0]) : im.dims[0], h = im.dims[1], w = im.dims[2];
  LabelledImages out;
  out.images = Tensor::empty({n, 1, h, w});
  for (std::int64_t i = 0; i < n * h * w; ++i) out.images.data()[i] = static_cast<float>(im.values[static_cast<std::size_t>(i)]) / 255.0f;
  for (std::int64_t i = 0; i < lb.dims[0]; ++i) out.classes = std::max(out.classes, lb.values[static_cast<std::size_t>(i)] + 1);
  out.labels.assign(lb.values.begin(), lb.values.begin() + n);
  return out;
}

}  // namespace morphokd::data
