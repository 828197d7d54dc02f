#include "morphokd/io/file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "morphokd/error.hpp"

namespace morphokd {

namespace {
std::string errno_text() { return std::strerror(errno); }

// Closes the descriptor on every path out, including exceptions.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

std::vector<std::byte> read_file(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) fail(path + ": cannot open: " + errno_text());
  std::vector<std::byte> out;
  std::byte buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path + ": read error: " + errno_text());
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

void fsync_directory(const std::string& dir) {
  Fd d{::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0 || ::fsync(d.fd) != 0) fail(dir + ": cannot sync directory: " + errno_text());
}

void write_file_atomic(const std::string& path, std::span<const std::byte> bytes) {
  const std::filesystem::path target(path);
  const std::string dir = target.parent_path().string();
  std::random_device rd;
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)};
    if (f.fd < 0) fail(path + ": cannot create: " + errno_text());
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(f.fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::string why = errno_text();
        ::unlink(tmp.c_str());
        fail(path + ": write error: " + why);
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(f.fd) != 0) {
      const std::string why = errno_text();
      ::unlink(tmp.c_str());
      fail(path + ": fsync failed: " + why);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    fail(path + ": cannot rename into place: " + why);
  }
  fsync_directory(dir);
}

StagedDirectory::StagedDirectory(const std::string& target, bool replace) : target_(target), replace_(replace) {
  if (!replace && std::filesystem::exists(target_)) fail(target + ": already exists; choose a new output directory");
  const std::filesystem::path parent = target_.has_parent_path() ? target_.parent_path() : ".";
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (!std::filesystem::is_directory(parent)) fail(target + ": cannot create its parent directory: " + ec.message());
  staging_ = parent / (target_.filename().string() + ".partial-" + std::to_string(::getpid()));
  std::filesystem::remove_all(staging_, ec);  // a leftover of a killed run with our pid
  if (!std::filesystem::create_directory(staging_, ec)) fail(target + ": cannot create " + staging_.string() + ": " + ec.message());
}

StagedDirectory::~StagedDirectory() {
  std::error_code ec;
  if (!committed_) std::filesystem::remove_all(staging_, ec);
}

void StagedDirectory::commit() {
  std::error_code ec;
  std::filesystem::path old;
  if (replace_ && std::filesystem::exists(target_)) {
    old = staging_.string() + ".old";
    std::filesystem::rename(target_, old, ec);
    if (ec) fail(target_.string() + ": cannot move the previous output aside: " + ec.message());
  }
  std::filesystem::rename(staging_, target_, ec);
  if (ec) {
    const std::string why = ec.message();
    if (!old.empty()) std::filesystem::rename(old, target_, ec);  // the previous output stays
    fail(target_.string() + ": cannot move the finished output into place: " + why);
  }
  committed_ = true;
  fsync_directory(target_.has_parent_path() ? target_.parent_path().string() : ".");
  if (!old.empty()) std::filesystem::remove_all(old, ec);
}

}  // namespace morphokd
