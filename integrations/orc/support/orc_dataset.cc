/*
 * orc_dataset.cc - generated ORC data sets, splits, checksums, and the
 * per-split need (see orc_dataset.hh).
 *
 * The generator is a seeded splitmix64 stream per (seed, file, column), so a
 * file's bytes depend only on its Spec and index. Columns cycle through four
 * kinds: bigint (a slowly rising sequence, which RLE v2 packs tightly),
 * double (two decimals, partly compressible), string (every other string
 * column from a 500-word vocabulary, dictionary-encoded; the others random
 * 8-24 letter strings, direct) and int (uniform below 100000).
 */
#include "orc_dataset.hh"

#include <sys/stat.h>
#include <sys/types.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace hmb_orc_data {

namespace {

std::uint64_t splitmix(std::uint64_t *s) {
  std::uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

std::uint64_t fmix(std::uint64_t h) {
  h ^= h >> 33;
  h *= UINT64_C(0xff51afd7ed558ccd);
  h ^= h >> 33;
  h *= UINT64_C(0xc4ceb9fe1a85ec53);
  h ^= h >> 33;
  return h;
}

std::uint64_t hash_bytes(const char *p, std::uint64_t n) {
  std::uint64_t h = fmix(n ^ UINT64_C(0x5851f42d4c957f2d));
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = fmix(h ^ w) + UINT64_C(0x14057b7ef767814f);
    p += 8;
    n -= 8;
  }
  if (n) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = fmix(h ^ w ^ (n << 56));
  }
  return h;
}

const std::uint64_t kNullTag = UINT64_C(0x6e756c6c6e756c6c);

// The cell hash: position and value together, so that a value in the wrong
// row or column changes the sum.
inline std::uint64_t cell(std::uint64_t colkey, std::uint64_t row,
                          std::uint64_t value) {
  return fmix(fmix(colkey ^ row * UINT64_C(0x9e3779b97f4a7c15)) ^ value);
}

const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

// Column generators share one state per column and file.
struct ColumnGen {
  std::uint64_t state;
  std::int64_t seq;
};

void fill_batch(const Spec &spec, std::vector<ColumnGen> &gen, std::uint64_t n,
                orc::StructVectorBatch &root,
                std::vector<std::vector<char>> &arena) {
  for (int c = 0; c < spec.columns; c++) {
    ColumnGen &g = gen[static_cast<size_t>(c)];
    orc::ColumnVectorBatch *f = root.fields[static_cast<size_t>(c)];
    bool nulls = nullable(c);
    f->hasNulls = false;
    for (std::uint64_t i = 0; i < n; i++) {
      bool is_null = nulls && splitmix(&g.state) % 25 == 0;
      f->notNull[i] = is_null ? 0 : 1;
      if (is_null)
        f->hasNulls = true;
    }
    switch (kind_of(c)) {
    case Kind::kBigint: {
      auto *b = dynamic_cast<orc::LongVectorBatch *>(f);
      for (std::uint64_t i = 0; i < n; i++) {
        g.seq += 1 + static_cast<std::int64_t>(splitmix(&g.state) % 4);
        b->data[i] = f->notNull[i] ? g.seq : 0;
      }
      break;
    }
    case Kind::kInt: {
      auto *b = dynamic_cast<orc::LongVectorBatch *>(f);
      for (std::uint64_t i = 0; i < n; i++)
        b->data[i] =
            f->notNull[i]
                ? static_cast<std::int64_t>(splitmix(&g.state) % 100000)
                : 0;
      break;
    }
    case Kind::kDouble: {
      auto *b = dynamic_cast<orc::DoubleVectorBatch *>(f);
      for (std::uint64_t i = 0; i < n; i++)
        b->data[i] =
            f->notNull[i]
                ? static_cast<double>(splitmix(&g.state) % 10000000) / 100.0
                : 0.0;
      break;
    }
    case Kind::kString: {
      auto *b = dynamic_cast<orc::StringVectorBatch *>(f);
      std::vector<char> &a = arena[static_cast<size_t>(c)];
      a.clear();
      std::vector<std::uint64_t> off(n), len(n);
      bool dict = (c / 4) % 2 == 0;
      for (std::uint64_t i = 0; i < n; i++) {
        off[i] = a.size();
        if (!f->notNull[i]) {
          len[i] = 0;
          continue;
        }
        if (dict) {
          char w[32];
          int k = std::snprintf(w, sizeof w, "word-%03u-%s",
                                static_cast<unsigned>(splitmix(&g.state) % 500),
                                "orc");
          a.insert(a.end(), w, w + k);
          len[i] = static_cast<std::uint64_t>(k);
        } else {
          std::uint64_t r = splitmix(&g.state);
          std::uint64_t k = 8 + r % 17;
          for (std::uint64_t j = 0; j < k; j++) {
            r = j % 8 == 7 ? splitmix(&g.state) : r >> 6;
            a.push_back(kAlphabet[r % 52]);
          }
          len[i] = k;
        }
      }
      for (std::uint64_t i = 0; i < n; i++) {
        b->data[i] = a.data() + off[i];
        b->length[i] = static_cast<std::int64_t>(len[i]);
      }
      break;
    }
    }
    f->numElements = n;
  }
  root.numElements = n;
}

// Counts what the writer has written so far (the stripes flushed).
class CountingOutput final : public orc::OutputStream {
public:
  explicit CountingOutput(std::unique_ptr<orc::OutputStream> out)
      : out_(std::move(out)) {}
  std::uint64_t getLength() const override {
    return out_->getLength();
  }
  std::uint64_t getNaturalWriteSize() const override {
    return out_->getNaturalWriteSize();
  }
  void write(const void *buf, size_t length) override {
    out_->write(buf, length);
    bytes_ += length;
  }
  const std::string &getName() const override {
    return out_->getName();
  }
  void close() override {
    out_->close();
  }
  std::uint64_t bytes() const {
    return bytes_;
  }

private:
  std::unique_ptr<orc::OutputStream> out_;
  std::uint64_t bytes_ = 0;
};

void make_dirs(const std::string &dir) {
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/')
    cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty())
      continue;
    cur += part + "/";
    if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
      throw std::runtime_error("cannot create " + cur + ": " +
                               std::strerror(errno));
  }
}

std::uint64_t file_size(const std::string &path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return UINT64_MAX;
  return static_cast<std::uint64_t>(st.st_size);
}

} // namespace

std::string Spec::key() const {
  char b[256];
  std::snprintf(b, sizeof b,
                "files=%d columns=%d file_bytes=%" PRIu64
                " stripe_bytes=%" PRIu64 " block_bytes=%" PRIu64
                " seed=%" PRIu64 " rows=%" PRIu64 " compression=%d format=1",
                files, columns, file_bytes, stripe_bytes, block_bytes, seed,
                rows, static_cast<int>(compression));
  return b;
}

Kind kind_of(int c) {
  static const Kind cycle[4] = {Kind::kBigint, Kind::kDouble, Kind::kString,
                                Kind::kInt};
  return cycle[c % 4];
}

bool nullable(int c) {
  return (c % 3 == 0 && c % 2 == 1) || c % 12 == 6 || c % 5 == 1;
}

std::string schema(int columns) {
  std::string s = "struct<";
  for (int c = 0; c < columns; c++) {
    if (c)
      s += ",";
    s += "c" + std::to_string(c) + ":";
    switch (kind_of(c)) {
    case Kind::kBigint:
      s += "bigint";
      break;
    case Kind::kDouble:
      s += "double";
      break;
    case Kind::kString:
      s += "string";
      break;
    case Kind::kInt:
      s += "int";
      break;
    }
  }
  return s + ">";
}

FileInfo write_file(const std::string &path, const Spec &spec, int index,
                    orc::MemoryPool *pool, Checksum *written) {
  std::unique_ptr<orc::Type> type =
      orc::Type::buildTypeFromString(schema(spec.columns));
  orc::WriterOptions wo;
  wo.setStripeSize(spec.stripe_bytes);
  wo.setCompressionBlockSize(spec.block_bytes);
  wo.setCompression(spec.compression);
  wo.setDictionaryKeySizeThreshold(0.8);
  if (pool)
    wo.setMemoryPool(pool);
  CountingOutput out(orc::writeLocalFile(path));
  std::unique_ptr<orc::Writer> w = orc::createWriter(*type, &out, wo);

  const std::uint64_t batch_rows = 8192;
  std::unique_ptr<orc::ColumnVectorBatch> batch = w->createRowBatch(batch_rows);
  auto &root = dynamic_cast<orc::StructVectorBatch &>(*batch);
  std::vector<ColumnGen> gen(static_cast<size_t>(spec.columns));
  for (int c = 0; c < spec.columns; c++) {
    std::uint64_t s = spec.seed * UINT64_C(1000003) +
                      static_cast<std::uint64_t>(index) * 1009 +
                      static_cast<std::uint64_t>(c);
    gen[static_cast<size_t>(c)] = ColumnGen{splitmix(&s), 0};
  }
  std::vector<std::vector<char>> arena(static_cast<size_t>(spec.columns));
  std::vector<int> all(static_cast<size_t>(spec.columns));
  for (int c = 0; c < spec.columns; c++)
    all[static_cast<size_t>(c)] = c;
  if (written)
    *written = Checksum(spec.columns);

  std::uint64_t target = spec.rows;
  std::uint64_t rows = 0;
  for (;;) {
    if (target != 0 && rows >= target)
      break;
    std::uint64_t n = batch_rows;
    if (target != 0 && target - rows < n)
      n = target - rows;
    fill_batch(spec, gen, n, root, arena);
    if (written)
      checksum_batch(root, all, static_cast<std::uint64_t>(index), rows,
                     written);
    w->add(*batch);
    rows += n;
    // Calibrate on the first flushed stripe: bytes per row so far.
    if (target == 0 && out.bytes() >= 1024) {
      double per_row =
          static_cast<double>(out.bytes()) / static_cast<double>(rows);
      target = static_cast<std::uint64_t>(static_cast<double>(spec.file_bytes) /
                                          per_row);
      if (target < rows)
        target = rows;
    }
    if (target == 0 && rows > (UINT64_C(1) << 32))
      throw std::runtime_error("write_file: no stripe was ever flushed");
  }
  w->close();
  out.close();

  FileInfo fi;
  fi.path = path;
  fi.rows = rows;
  fi.bytes = file_size(path);
  std::unique_ptr<orc::Reader> r =
      orc::createReader(orc::readLocalFile(path), orc::ReaderOptions());
  fi.stripes = r->getNumberOfStripes();
  if (r->getNumberOfRows() != rows)
    throw std::runtime_error("write_file: row count mismatch in " + path);
  return fi;
}

std::vector<FileInfo>
ensure_dataset(const std::string &dir, const Spec &spec, bool *generated,
               const std::function<void(const std::string &)> &log) {
  const std::string manifest = dir + "/manifest.txt";
  std::vector<FileInfo> files;
  if (generated)
    *generated = false;
  {
    std::ifstream in(manifest);
    std::string line;
    bool ok = false;
    if (std::getline(in, line) && line == "hmb-orc-data " + spec.key()) {
      ok = true;
      for (int i = 0; i < spec.files && ok; i++) {
        FileInfo fi;
        std::string name;
        if (!(in >> name >> fi.rows >> fi.bytes >> fi.stripes)) {
          ok = false;
          break;
        }
        fi.path = dir + "/" + name;
        if (file_size(fi.path) != fi.bytes)
          ok = false;
        files.push_back(fi);
      }
    }
    if (ok)
      return files;
  }
  files.clear();
  make_dirs(dir);
  std::remove(manifest.c_str());
  for (int i = 0; i < spec.files; i++) {
    char name[32];
    std::snprintf(name, sizeof name, "part-%03d.orc", i);
    std::string path = dir + "/" + name;
    std::string tmp = path + ".tmp";
    FileInfo fi = write_file(tmp, spec, i);
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      throw std::runtime_error("cannot rename " + tmp);
    fi.path = path;
    if (log)
      log("wrote " + path + ": " + std::to_string(fi.rows) + " rows, " +
          std::to_string(fi.bytes) + " bytes, " + std::to_string(fi.stripes) +
          " stripes");
    files.push_back(fi);
  }
  std::string tmp = manifest + ".tmp";
  {
    std::ofstream out(tmp);
    out << "hmb-orc-data " << spec.key() << "\n";
    for (const FileInfo &fi : files)
      out << fi.path.substr(dir.size() + 1) << " " << fi.rows << " " << fi.bytes
          << " " << fi.stripes << "\n";
    if (!out)
      throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), manifest.c_str()) != 0)
    throw std::runtime_error("cannot rename " + tmp);
  if (generated)
    *generated = true;
  return files;
}

std::vector<Split> make_splits(const std::vector<FileInfo> &files,
                               std::uint64_t split_bytes) {
  std::vector<Split> out;
  for (size_t f = 0; f < files.size(); f++)
    for (std::uint64_t off = 0; off < files[f].bytes; off += split_bytes) {
      Split s;
      s.file = static_cast<int>(f);
      s.offset = off;
      s.length = std::min(split_bytes, files[f].bytes - off);
      out.push_back(s);
    }
  return out;
}

void Checksum::add(const Checksum &o) {
  if (column.size() < o.column.size())
    column.resize(o.column.size());
  for (size_t i = 0; i < o.column.size(); i++)
    column[i] += o.column[i];
  rows += o.rows;
  nulls += o.nulls;
  decoded += o.decoded;
}

std::uint64_t Checksum::digest() const {
  std::uint64_t h = fmix(rows ^ UINT64_C(0x243f6a8885a308d3));
  for (std::uint64_t v : column)
    h = fmix(h ^ v) + UINT64_C(0x13198a2e03707344);
  return h;
}

void checksum_batch(const orc::ColumnVectorBatch &batch,
                    const std::vector<int> &fields, std::uint64_t file_id,
                    std::uint64_t first_row, Checksum *sum) {
  const auto &root = dynamic_cast<const orc::StructVectorBatch &>(batch);
  const std::uint64_t n = root.numElements;
  for (size_t k = 0; k < fields.size(); k++) {
    const int c = fields[k];
    const orc::ColumnVectorBatch *f = root.fields[k];
    const std::uint64_t key =
        fmix(file_id * 131 + static_cast<std::uint64_t>(c) + 1);
    const bool has_nulls = f->hasNulls;
    std::uint64_t acc = 0, nulls = 0, decoded = 0;
    const Kind kind = kind_of(c);
    const auto *longs = dynamic_cast<const orc::LongVectorBatch *>(f);
    const auto *doubles = dynamic_cast<const orc::DoubleVectorBatch *>(f);
    const auto *strings = dynamic_cast<const orc::StringVectorBatch *>(f);
    if ((kind == Kind::kString && !strings) ||
        ((kind == Kind::kBigint || kind == Kind::kInt) && !longs) ||
        (kind == Kind::kDouble && !doubles))
      throw std::runtime_error("checksum_batch: unexpected vector type");
    for (std::uint64_t i = 0; i < n; i++) {
      const std::uint64_t row = first_row + i;
      if (has_nulls && !f->notNull[i]) {
        acc += cell(key, row, kNullTag);
        nulls++;
        continue;
      }
      std::uint64_t v;
      if (strings) {
        const std::uint64_t len =
            static_cast<std::uint64_t>(strings->length[i]);
        v = hash_bytes(strings->data[i], len);
        decoded += len;
      } else if (longs) {
        v = static_cast<std::uint64_t>(longs->data[i]);
        decoded += 8;
      } else {
        std::memcpy(&v, &doubles->data[i], 8);
        decoded += 8;
      }
      acc += cell(key, row, v);
    }
    sum->column[static_cast<size_t>(c)] += acc;
    sum->nulls += nulls;
    sum->decoded += decoded;
  }
  sum->rows += n;
}

std::vector<int> every_third(int columns) {
  std::vector<int> v;
  for (int c = 0; c < columns; c += 3)
    v.push_back(c);
  return v;
}

void CountingInput::read(void *buf, std::uint64_t length,
                         std::uint64_t offset) {
  in_->read(buf, length, offset);
  std::uint64_t total =
      bytes_.fetch_add(length, std::memory_order_relaxed) + length;
  reads_.fetch_add(1, std::memory_order_relaxed);
  if (on_read)
    on_read(total);
}

std::uint64_t tail_bytes(const orc::Reader &reader) {
  return 1 + reader.getFilePostscriptLength() + reader.getFileFooterLength();
}

Need split_need(const orc::Reader &reader, const Split &split,
                const std::vector<int> &fields) {
  Need need;
  need.footer_bytes = tail_bytes(reader);
  // Column ids of the selection: the root struct and each selected field.
  std::vector<bool> selected(reader.getType().getMaximumColumnId() + 1, false);
  selected[0] = true;
  for (int c : fields) {
    const orc::Type *t =
        reader.getType().getSubtype(static_cast<std::uint64_t>(c));
    for (std::uint64_t id = t->getColumnId(); id <= t->getMaximumColumnId();
         id++)
      selected[id] = true;
  }
  const std::uint64_t end = split.offset + split.length;
  for (std::uint64_t i = 0; i < reader.getNumberOfStripes(); i++) {
    std::unique_ptr<orc::StripeInformation> st = reader.getStripe(i);
    if (st->getOffset() < split.offset || st->getOffset() >= end)
      continue;
    need.stripes++;
    need.footer_bytes += st->getFooterLength();
    for (std::uint64_t s = 0; s < st->getNumberOfStreams(); s++) {
      std::unique_ptr<orc::StreamInformation> si = st->getStreamInformation(s);
      const orc::StreamKind k = si->getKind();
      if (k == orc::StreamKind_ROW_INDEX || k == orc::StreamKind_BLOOM_FILTER ||
          k == orc::StreamKind_BLOOM_FILTER_UTF8)
        continue;
      if (si->getColumnId() < selected.size() && selected[si->getColumnId()])
        need.stream_bytes += si->getLength();
    }
  }
  return need;
}

} // namespace hmb_orc_data
