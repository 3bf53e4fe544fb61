/*
 * orc_dataset.hh - ORC files for the adapter tests and the ORC bench:
 * written by ORC's own writer from a seeded generator, cut into byte-range
 * splits as a planner does, and checksummed value by value.
 *
 * The checksum is a per-column sum over rows of a hash of (file, row,
 * column, value or null). A sum does not depend on batch boundaries or on
 * the order in which splits are read, so any set of splits that covers each
 * stripe exactly once adds up to the checksum of the whole file, and a row
 * read twice, missed, or read with a wrong value changes it.
 *
 * Not part of the adapter: internal to the tests and the bench.
 */
#ifndef HMB_ORC_DATASET_HH
#define HMB_ORC_DATASET_HH

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <orc/OrcFile.hh>

namespace hmb_orc_data {

/** Column kinds of the generated schema, cycling with the column index. */
enum class Kind { kBigint, kDouble, kString, kInt };

/** What a data set looks like; everything that decides its bytes. */
struct Spec {
  int files = 8;                          /**< number of files */
  int columns = 24;                       /**< columns per file */
  std::uint64_t file_bytes = 48u << 20;   /**< target size of one file */
  std::uint64_t stripe_bytes = 10u << 20; /**< ORC writer stripe size */
  std::uint64_t block_bytes = 64u << 10;  /**< compression block size */
  std::uint64_t seed = 42;                /**< generator seed */
  std::uint64_t rows = 0; /**< rows per file; 0: by file_bytes */
  orc::CompressionKind compression = orc::CompressionKind_ZSTD;

  /** One line naming every field, for manifests and directory names. */
  std::string key() const;
};

/** The kind of column `c`. */
Kind kind_of(int c);
/** Whether column `c` has nulls (about 4% of its rows). */
bool nullable(int c);
/** The ORC schema string of `columns` columns ("struct<c0:bigint,...>"). */
std::string schema(int columns);

/** What writing one file produced. */
struct FileInfo {
  std::string path;
  std::uint64_t rows = 0;
  std::uint64_t bytes = 0;
  std::uint64_t stripes = 0;
};

struct Checksum;

/**
 * Write file number `index` of `spec` to `path` with ORC's writer. With
 * spec.rows == 0 the row count is chosen so that the file comes out near
 * spec.file_bytes (the writer's first stripe calibrates it).
 * @param pool    the memory pool the writer allocates from; NULL: ORC's
 *                default
 * @param written receives the checksum of every value written (all
 *                columns, file id `index`); may be NULL
 * @throws whatever ORC throws
 */
FileInfo write_file(const std::string &path, const Spec &spec, int index,
                    orc::MemoryPool *pool = nullptr,
                    Checksum *written = nullptr);

/**
 * Make sure `dir` holds the data set `spec`: reuse it when its manifest
 * matches and every file has the recorded size, otherwise (re)write it.
 * @param log where progress lines go; may be NULL
 * @return the files, in index order
 * @throws std::runtime_error when the directory cannot be written
 */
std::vector<FileInfo>
ensure_dataset(const std::string &dir, const Spec &spec, bool *generated,
               const std::function<void(const std::string &)> &log);

/** A byte range of one file: the unit of one scan task. */
struct Split {
  int file = 0;             /**< index into the file list */
  std::uint64_t offset = 0; /**< first byte */
  std::uint64_t length = 0; /**< bytes; stripes *starting* here belong to it */
};

/** Cut every file into splits of `split_bytes` (the last one shorter). */
std::vector<Split> make_splits(const std::vector<FileInfo> &files,
                               std::uint64_t split_bytes);

/** Value checksums of a scan, per file column. */
struct Checksum {
  std::vector<std::uint64_t> column; /**< per file column, summed over rows */
  std::uint64_t rows = 0;            /**< rows seen */
  std::uint64_t nulls = 0;           /**< null cells seen */
  std::uint64_t decoded = 0;         /**< bytes of values decoded (8 per
                                          number, the length of a string) */

  explicit Checksum(int columns = 0) : column(static_cast<size_t>(columns)) {}
  /** Add another scan's sums (for splits of the same files). */
  void add(const Checksum &o);
  /** One word over every column sum and the row count. */
  std::uint64_t digest() const;
  /** Same digest and same per-column sums. */
  bool operator==(const Checksum &o) const {
    return column == o.column && rows == o.rows && nulls == o.nulls;
  }
  bool operator!=(const Checksum &o) const {
    return !(*this == o);
  }
};

/**
 * Fold one batch into `sum`.
 * @param batch     a batch of a row reader (a StructVectorBatch)
 * @param fields    the file column of each of its fields, in order
 * @param file_id   identifies the file (use the split's file index)
 * @param first_row the file row number of the batch's first row
 *                  (RowReader::getRowNumber() after next())
 */
void checksum_batch(const orc::ColumnVectorBatch &batch,
                    const std::vector<int> &fields, std::uint64_t file_id,
                    std::uint64_t first_row, Checksum *sum);

/** The projection of the bench: every third column (0, 3, 6, ...). */
std::vector<int> every_third(int columns);

/**
 * An orc::InputStream that counts the bytes read through it and can call a
 * hook after every read (the tests cancel a runner from there).
 */
class CountingInput final : public orc::InputStream {
public:
  explicit CountingInput(std::unique_ptr<orc::InputStream> in)
      : in_(std::move(in)) {}
  std::uint64_t getLength() const override {
    return in_->getLength();
  }
  std::uint64_t getNaturalReadSize() const override {
    return in_->getNaturalReadSize();
  }
  void read(void *buf, std::uint64_t length, std::uint64_t offset) override;
  const std::string &getName() const override {
    return in_->getName();
  }

  /** Bytes read so far. */
  std::uint64_t bytes() const {
    return bytes_.load(std::memory_order_relaxed);
  }
  /** Reads so far. */
  std::uint64_t reads() const {
    return reads_.load(std::memory_order_relaxed);
  }
  /** Called after each read with the total bytes read; may throw. */
  std::function<void(std::uint64_t)> on_read;

private:
  std::unique_ptr<orc::InputStream> in_;
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> reads_{0};
};

/**
 * What a split will read, known once its reader has the file tail and the
 * stripe footers: the streams of the selected columns of the stripes that
 * start in the split, plus the tail and the stripe footers. Index streams
 * (row index, bloom filters) are not read without a search argument and
 * are not counted.
 */
struct Need {
  std::uint64_t stripes = 0;      /**< stripes that start in the split */
  std::uint64_t stream_bytes = 0; /**< selected columns' data streams */
  std::uint64_t footer_bytes = 0; /**< file tail + stripe footers */
  std::uint64_t total() const {
    return stream_bytes + footer_bytes;
  }
};

/**
 * Compute a split's Need from an open reader (reads the stripe footers
 * through the reader's memory pool).
 * @param fields the selected file columns
 */
Need split_need(const orc::Reader &reader, const Split &split,
                const std::vector<int> &fields);

/** The first piece a reader reads: the file tail (postscript + footer). */
std::uint64_t tail_bytes(const orc::Reader &reader);

} // namespace hmb_orc_data

#endif // HMB_ORC_DATASET_HH
