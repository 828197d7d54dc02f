// How a host program embeds morphokd: only <morphokd/morphokd.hpp>, the static library,
// and a trained run directory. Scores the gray 64x64 cells of a raw uint8 file.
//   embed_example RUN CELLS.u8      (CELLS.u8: n * 4096 bytes, row-major 64x64 cells)
#include <morphokd/morphokd.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: embed_example RUN CELLS.u8\n");
    return 2;
  }
  try {
    std::ifstream in(argv[2], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "embed_example: %s: cannot open\n", argv[2]);
      return 1;
    }
    const std::vector<unsigned char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (raw.empty() || raw.size() % 4096 != 0) {
      std::fprintf(stderr, "embed_example: %s: expected a non-empty multiple of 4096 bytes\n", argv[2]);
      return 1;
    }
    std::vector<float> cells(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) cells[i] = static_cast<float>(raw[i]) / 255.0f;
    morphokd::AnomalyDetector detector = morphokd::AnomalyDetector::open(argv[1]);
    const morphokd::CellScores r = detector.score(cells.data(), static_cast<std::int64_t>(raw.size() / 4096));
    std::printf("part %s, threshold %.9g (%s)\n", detector.part().c_str(), r.threshold, r.threshold_rule.c_str());
    for (std::size_t i = 0; i < r.scores.size(); ++i)
      std::printf("%zu %.9g %s\n", i, r.scores[i], r.abnormal[i] ? "abnormal" : "normal");
  } catch (const morphokd::Error& e) {
    std::fprintf(stderr, "embed_example: %s\n", e.what());
    return 1;
  }
  return 0;
}
