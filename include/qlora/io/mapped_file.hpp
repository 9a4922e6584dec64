// qlora/io/mapped_file.hpp — a read-only memory mapping of a whole file.
//
// Model files are large (hundreds of MB to tens of GB) and mostly read once,
// so we map them instead of reading: the kernel pages tensor data in on first
// touch, several processes share the page cache, and parsers can hand out
// zero-copy views (GgufFile's tensor spans point straight into the mapping).
//
// The mapping lives exactly as long as its MappedFile. The type is move-only;
// moving it does not move the mapped pages, so spans taken before a move stay
// valid. An empty file is legal and yields an empty span (mmap of length 0 is
// an error on Linux, so we never call it).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "qlora/core/status.hpp"

namespace qlora::io {

/// Read-only, private mapping of an entire file (RAII, move-only).
class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept { swap(other); }
  MappedFile& operator=(MappedFile&& other) noexcept {
    if (this != &other) {
      MappedFile dying(std::move(other));
      swap(dying);  // our old mapping is released when `dying` goes out of scope
    }
    return *this;
  }
  ~MappedFile() { unmap(); }

  /// Map `path` read-only. Errors (kIo) name the path, the failing call and
  /// the OS reason; directories and other non-regular files are refused.
  static Result<MappedFile> open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return os_error(path, "open");
    // The descriptor is only needed until mmap returns; the mapping keeps the
    // file's pages alive on its own, so we close on every path out.
    struct FdCloser {
      int fd;
      ~FdCloser() { ::close(fd); }
    } closer{fd};

    struct stat st {};
    if (::fstat(fd, &st) != 0) return os_error(path, "fstat");
    if (!S_ISREG(st.st_mode)) return Status::io(path + ": not a regular file");

    MappedFile file;
    file.path_ = path;
    file.size_ = static_cast<std::size_t>(st.st_size);
    if (file.size_ == 0) return file;  // nothing to map; bytes() is empty

    void* addr = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) return os_error(path, "mmap");
    file.data_ = static_cast<const std::byte*>(addr);
    return file;
  }

  /// The whole file; valid while this object (or the one it moved into) lives.
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  /// The path given to open(), for error messages.
  const std::string& path() const { return path_; }

 private:
  static Status os_error(const std::string& path, const char* call) {
    const int err = errno;  // read before anything else can clobber it
    return Status::io(path + ": " + call + " failed: " + std::strerror(err));
  }

  void swap(MappedFile& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(path_, other.path_);
  }

  void unmap() noexcept {
    // const_cast: munmap takes void*, but we never wrote through the pointer.
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }

  const std::byte* data_ = nullptr;  // nullptr when empty or moved-from
  std::size_t size_ = 0;
  std::string path_;
};

}  // namespace qlora::io
