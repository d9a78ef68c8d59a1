// File input and output shared by the data loaders and the checkpoint code: reading files that may
// be gzip-compressed, and atomic writes.
//
// Every failure throws latent::Error("[component] <path>: what is wrong"), with the system's reason
// (errno text or zlib's message) where there is one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace latent::data {

// True when `path` ends in ".gz": such files are read through zlib.
bool is_gzip_path(std::string_view path);

// A file opened for sequential reading; decompressed on the fly when the name ends in ".gz".
// Refuses directories and files that cannot be opened.
class InputFile {
 public:
  InputFile(const std::string& path, std::string_view component);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Reads up to n bytes into dst and returns how many were read: fewer than n only at the end of
  // the file. Throws on a read error or on corrupt or truncated gzip data.
  std::size_t read(void* dst, std::size_t n);
  // Reads and counts the bytes left (0 at the end of the file).
  std::uint64_t skip_rest();
  // Size in bytes on disk of an uncompressed file; -1 for a compressed one (unknown in advance).
  std::int64_t size() const { return size_; }
  bool compressed() const { return gz_ != nullptr; }
  const std::string& path() const { return path_; }

  // Throws latent::Error("[component] <path>: " + what).
  [[noreturn]] void fail(const std::string& what) const;

 private:
  std::string path_;
  std::string component_;
  int fd_ = -1;
  void* gz_ = nullptr;  // gzFile; void* keeps zlib.h out of this header
  std::int64_t size_ = -1;
};

// The whole (decompressed) content of a file.
std::string read_file(const std::string& path, std::string_view component);

// Writes a file atomically: the bytes go to a temporary file in the same folder, which commit()
// flushes to disk (fsync) and renames over `path`. Until then `path` is untouched; if commit() is
// never reached (an exception, an error while writing) the destructor removes the temporary file,
// so a failed write leaves neither a partial file nor a damaged old one.
//
//   AtomicWriter out(path, "save");
//   out.write(header.data(), header.size());
//   out.write(data, bytes);
//   out.commit();
class AtomicWriter {
 public:
  // Creates the temporary file. Throws when the folder does not exist or is not writable.
  AtomicWriter(const std::string& path, std::string_view component);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;

  void write(const void* data, std::size_t n);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // fsync, close, rename over the target, then fsync the folder. Throws (and removes the
  // temporary file) on failure.
  void commit();
  const std::string& temp_path() const { return temp_path_; }

 private:
  [[noreturn]] void fail(const std::string& what, int err);
  void discard() noexcept;

  std::string path_;
  std::string temp_path_;
  std::string component_;
  int fd_ = -1;
  bool committed_ = false;
  int pending_ = -1;  // its entry among the pending temporaries (-1: none)
};

// Writes `bytes` to `path` through an AtomicWriter.
void write_file_atomic(const std::string& path, std::string_view bytes, std::string_view component);

// Removes the temporary files of this process's AtomicWriters that have neither committed nor
// cleaned up yet, for a signal handler about to end the process (async-signal-safe: unlink and
// nanosleep only; the writers are not told), whichever thread it runs on. Writers about to create
// their files are given 0.1 s in all to do so; one that starts after this call waits for the end
// of the process before it creates its file (a second at most: past that the process lived on,
// and writes go on). Call it again just before the end: it removes too the files of writers that
// were still being created the first time. The first 16 writers alive at once are known (paths
// under 4096 bytes); the temporaries of others are left to remove_stale_temporaries().
void remove_pending_temporaries() noexcept;

// Removes from `folder` the temporary files an AtomicWriter of a process that no longer runs left
// behind (killed before it could commit or clean up): names "<file>.tmp.<pid>.<n>" whose process
// is gone. Nothing else is touched. Returns how many were removed; a folder that cannot be read
// is left alone (0).
int remove_stale_temporaries(const std::string& folder);

}  // namespace latent::data
