//! The fixed prose of the report: how the figures were made, and the settings.

use crate::bigtx::{DEADLINE_SHARE, ROW_BYTES, SQL_INSERT_BIGTX};
use crate::scale::live::{COMMITS_PER_SEC, RANDOM_ROWS};
use crate::scale::pages::{BODY_LEN, FANOUT};
use crate::write::{BATCH_ROWS, SQL_INSERT, VISIBLE_TIMEOUT_INTERVALS};

pub(super) const METHOD: &str = "## Method

- **Data** (deterministic, `crates/bench/src/gen.rs`): `items(id INTEGER PRIMARY KEY, sku, \
category, price, qty, created_at)` with an index on `(category, created_at)`, ~4 000 rows per MB; \
`docs(id, item_id, title, body)` with ~600-byte bodies, ~790 rows per MB. Both tables and the \
index grow together, as in a database that was written over time, so their pages interleave.
- **Replica:** the real Go `litestream replicate` 0.5.17 uploads the bulk-loaded database to \
testkit's S3 server (s3s-fs on 127.0.0.1, TCP_NODELAY) with compaction levels 4 s / 8 s / 16 s, \
then a write stream of ~20 small transactions a second (5 item updates and one new doc each) runs \
for 24 s with a quiet point 4 s in, whose time is the time-travel target. Generation ends when \
level 3 holds the last transaction; the replica then has a start-up snapshot (L9), L3, L2, L1 \
and L0 files. `litestream restore` of it is the local SQLite target, checked against the primary; \
`litestream restore -timestamp` at the quiet point is checked against what the primary held then.
- **Targets:** our VFS (`target/release/liblitestream_vfs.so`), the Go VFS (`litestream-vfs.so` \
from PyPI `litestream-vfs==0.5.17`), both loaded with `load_extension` (entry point \
`sqlite3_litestreamvfs_init`) into a small rusqlite program (`bench-runner`, bundled SQLite) and \
opened as `file:app.db?vfs=litestream` read-only with the same environment \
(`LITESTREAM_REPLICA_URL=s3://bench/app?endpoint=…&region=us-east-1&force-path-style=true`, test \
credentials, no `AWS_CA_BUNDLE`, default cache and poll settings); and local SQLite on the \
restored file (already in the OS page cache: the limit, not a cold disk).
- **Runs:** one fresh process per (run, workload, target); the order of the targets rotates from \
run to run. Every workload but the first is measured after an unmeasured load + open + schema \
read. Request counts come from the S3 server's counters, read by the runner just before and \
after its measured section (so they include the VFS's own background polling in that window).
- **Workloads:** (1) load extension + open + one point query, timed from before \
`load_extension`; (2) 1000 random point lookups by id (the same ids for every target), then the \
same 1000 again in the same process (warm); (3) `category = ? AND created_at` in a window \
holding ~250 rows, through the index then a rowid lookup per row; (4) 10 000 consecutive ids; \
(5) `count(*)` on items (SQLite counts the smaller b-tree, the `(category, created_at)` index); \
(6) `count(*), sum(length(body))` over docs; (7) `PRAGMA litestream_time` \
to the quiet point, read the docs the stream added, `PRAGMA litestream_time = 'latest'`, read \
them again (n/a for local SQLite).
- **Hydration** (issue #5; VFS targets, no latency pass): (8) with `LITESTREAM_HYDRATION_PATH` \
(and `LITESTREAM_HYDRATION_ENABLED=true`, which the Go VFS needs) on an empty path: load + open + \
first query + polling `PRAGMA litestream_hydration_progress` every 5 ms until it says 100, then \
the 1000 point lookups in the same process, compared with local SQLite's cold lookups; (9) a \
fresh process on the file (and sidecar) that run left: load + open + until ready + the 1000 \
lookups. Our VFS reports 100 only once the file serves reads. The Go VFS reports the progress of \
its restore stream (pages compacted ÷ pages) and switches to the file a moment after the last \
page is written, so for it the runner also waits until the file has the database's size; the \
few GETs that may still show in its \"1000 point lookups after\" row are reads from before the \
switch, and its time to 100 % is, if anything, slightly early (in its favour). On a resumed \
file the Go VFS reports no progress at all, so (9) does not wait on it. Bytes are those the \
server sent during the measured section (open and index reads included).
- **Answers:** every measured section returns a row count and a checksum of every value; they \
must equal local SQLite's (for time travel, what the primary held at the target time, then at \
the end).
- **Latency pass:** the same workloads through testkit's fault-injecting proxy (`FaultProxy`, \
the layer the fault tests use), configured to add the latency before every response and no \
fault. Fewer \
runs (see the settings), local SQLite is not rerun, hydration is not run, and runs are killed \
after `BENCH_LATENCY_TIMEOUT` seconds (a killed target and workload is not run again): 1000 cold \
point lookups cost ~1000 GETs one after another in both VFS (SQLite asks for one page at a time), \
and the cold scans are one request per page for the Go VFS and, on the interleaved layout, for \
our `count(*)`; at +20 ms each those take minutes, so they show as a lower bound \"> N s (killed)\" \
with the requests counted by then.
- **Layout:** by default the bulk load interleaves the pages of `items`, its index and `docs` \
(see the layout table above), as in a database that grew over time. `BENCH_VACUUMED_SIZES` (default \
`200`) adds a dataset that was `VACUUM`ed before replication, where every b-tree is one run of \
consecutive pages: the best case for read-ahead. The issue's targets are judged on the grown \
database.
- **Peak RSS** is the runner's `VmHWM`, so it includes the runner and SQLite's own page cache \
(~2 MB) and, for the Go VFS, the resident part of its 84 MB Go runtime.
";

pub(super) const KNOBS: &str = "
Environment knobs: `BENCH_SIZES` (MB, e.g. `10,200,1000`), `BENCH_VACUUMED_SIZES`, `BENCH_RUNS`, `BENCH_LATENCY_MS`, \
`BENCH_LATENCY_SIZES`, `BENCH_LATENCY_RUNS`, `BENCH_LATENCY_GO_RUNS`, `BENCH_TIMEOUT`, \
`BENCH_LATENCY_TIMEOUT`, `BENCH_DIR`; for the write suite `BENCH_WRITE_SIZES` (default `200` when \
200 is among the sizes), `BENCH_WRITE_RUNS`, `BENCH_WRITE_SECS`, `BENCH_WRITE_LOAD_SECS`, \
`BENCH_WRITE_SAMPLES`, `BENCH_WRITE_TIMEOUT`, `BENCH_WRITE_WORKLOADS` (names, e.g. `bigtx`; default \
all), `BENCH_BIGTX_MB` (sizes of the one big transaction, default `500`; empty: not run), \
`BENCH_BIGTX_RUNS` (default 1), `BENCH_BIGTX_TIMEOUT` (default 600 s); for the scale suite `BENCH_SCALE_PAGES` (rows, \
one leaf page each, default `1M,8M,26M`), `BENCH_SCALE_FOLLOW_SECS` (default 600), \
`BENCH_SCALE_HYDRATE` (sizes also hydrated, default `8M`), `BENCH_SCALE_TIMEOUT` (default the \
follow + 1800 s); `BENCH_SUITES` (any of `read`, `write`, `scale`; default `read,write`: a \
suite left out keeps its figures from the last run); `BENCH_REPORT_ONLY=1 make bench` rewrites \
this report from the last run's results.
";

/// The write suite's bullets of the method.
pub(super) fn write_suite() -> String {
    format!(
        "- **Write mode** (issue #4): both VFS with `LITESTREAM_WRITE_ENABLED=true`, \
`LITESTREAM_SYNC_INTERVAL` set to the default interval, their own `LITESTREAM_BUFFER_PATH`, on \
the same S3 server; local SQLite on a file in a rollback journal (`journal_mode=DELETE`, what the \
VFS runs in). Every run is a fresh process on its own store: an empty bucket for a new database, \
or the cached replica recreated with hard links (the server writes an object to a temporary file \
and renames it into place, and writers only add objects, so no run changes what another sees); \
local SQLite gets a copy of the restored file. Each write is `{SQL_INSERT}` with deterministic \
values (an `items` row and its `(category, created_at)` index entry). On a new database the \
schema (the same table and index) is created by a first connection that is closed, and so \
uploaded, before the measured one opens: the Go VFS 0.5.17 fails every statement with \"database \
disk image is malformed\" when the connection that created a database writes again after its \
first upload. On a replica the pages the inserts change (both ends of each category's run in the \
index, the table's last leaf) are read before the timed part, whose figures are thus mostly those \
of writing, not of fetching cold pages (the read suite's subject); when a leaf splits, SQLite \
still reads its neighbours, which shows as GETs in both VFS. Workloads: single-row autocommit \
transactions, and transactions of {BATCH_ROWS} \
rows, for `BENCH_WRITE_SECS` each, with `synchronous=FULL` (SQLite's default) and \
`synchronous=OFF`; COMMIT → object in the store: `BENCH_WRITE_SAMPLES` single commits on a new \
database with nothing pending, the k-th (k + ½)/samples of an interval after the previous one \
showed (so they fall across the upload cycle), each timed from the start of the COMMIT until a \
new LTX file is under the replica's prefix on the server's disk (polled every millisecond; an \
object is there once complete), given up after {VISIBLE_TIMEOUT_INTERVALS} intervals; uploads \
under continuous writes: single-row commits without pause for `BENCH_WRITE_LOAD_SECS`, then the \
LTX files whose modification time falls in that window (no polling competes with the writes), \
judged on the longest time without one, from the first commit to the last; opening: \
`load_extension` + open in write mode + one autocommit insert, all measured, on the replica. \
Throughput is counted while writing; what a VFS leaves pending is uploaded when the connection \
closes, shown apart (\"close\"). After every run on a new database, and after the first \
single-row and batched run on a replica, `litestream restore` rebuilds the database from the \
store, checks its integrity and compares its `items` rows with those before the run plus those \
the run committed (and with what the writer's connection counted at the end); a run that failed \
is checked too, for what it committed before failing.
- **One big transaction** (issue #14): on a new database whose table `t(id INTEGER PRIMARY KEY, \
b BLOB)` a first connection created and closed, one process per size and target opens the \
database, runs `BEGIN`, `{SQL_INSERT_BIGTX}` with `BENCH_BIGTX_MB` × 10^6 / {ROW_BYTES} rows of \
{ROW_BYTES} random bytes (about one 4 KiB page each, incompressible), then `COMMIT` (default \
`synchronous=FULL`), each timed; then polls the server's disk every millisecond until an LTX \
object starting after the schema's TXID is there (not a compaction), timed from the end of \
`COMMIT` and given up at {share:.0} % of `BENCH_BIGTX_TIMEOUT`; then closes, timed. Peak RSS is the \
runner's `VmHWM` read at the end. `litestream restore` then checks the replica's integrity and \
its rows. A run is skipped, saying so, when the disk has less than four times the size and 2 GB \
free; a target killed at one size is not run at larger ones.\n",
        share = DEADLINE_SHARE * 100.0
    )
}

/// The scale suite's bullets of the method.
pub(super) fn scale_suite() -> String {
    format!(
        "- **Scale** (issue #14, `crates/bench/src/scale/`): the database, `t(id INTEGER PRIMARY \
KEY, body TEXT)` with one {BODY_LEN}-byte row per 4 KiB leaf and interior pages of {FANOUT} \
children up to the root, is computed page by page and streamed into an LTX snapshot (TXID 1, \
size-prefixed LZ4 blocks, no database checksum, as Litestream 0.5 writes) in a `file://` replica \
(`ltx/9/…`), never existing as a database file; SQLite's lock page at 1 GiB is skipped. A test \
(`cargo test -p bench --lib scale`) restores a 10 000-row replica, with live commits, with the \
Go `litestream restore` and runs `PRAGMA integrity_check`. Replicas are cached in `.bench/`. The \
live primary is the generator itself, appending level-0 files (`ltx/0/…`, TXIDs without a gap) \
on a fixed schedule of {COMMITS_PER_SEC} commits a second, each changing page 1 (its change \
counter), row 1 (whose body names the commit) and {RANDOM_ROWS} random rows: a small real \
database replicated beside it would not exercise the large one's page map, which is what the \
suite measures. Each run starts from the snapshot alone (level 0 emptied), so both VFS see the \
same replica. One fresh process per VFS and size, default cache and poll settings: load + open \
+ the first query (row 1) timed from before `load_extension`; `VmRSS` and `VmHWM` (the peak so far: what opening cost at its worst) then; one cold point read \
of the row 7 from the end (the last leaves); then the primary starts and the process follows for \
`BENCH_SCALE_FOLLOW_SECS`, reading row 1 and a random row every 100 ms, sampling `VmRSS` every \
100 ms (peak, end) and its own CPU time (`/proc/self/stat` utime + stime) over the follow. \
Our VFS also reports its page map (`index_bytes` of `PRAGMA litestream_stats`, after open and at \
the end of the follow): the compact page indexes of the version's files, counted from their \
allocations, and the map of pages changed since its base at 16 bytes an entry. \
Hydration: a fresh process with `LITESTREAM_HYDRATION_PATH` (and \
`LITESTREAM_HYDRATION_ENABLED=true`), timed from before `load_extension` until \
`litestream_hydration_progress` says 100 (for the Go VFS also until its file has the database's \
size), and its `VmHWM`. Guards: before each run the driver estimates its memory from the RSS \
after open at the smaller sizes measured (the marginal bytes per page of the two largest) times \
its growth over the follow (before any: 55 B/page × 2.4 for ours, 400 B/page × 1.2 for Go, the \
issue's figures) and skips the run, saying so, when that and 2 GB would not fit in \
`MemAvailable`; a hydration is skipped when the database and 4 GB would not fit on the disk. \
Knobs: `BENCH_SUITES=scale` (not in the default), `BENCH_SCALE_PAGES`, `BENCH_SCALE_FOLLOW_SECS`, \
`BENCH_SCALE_HYDRATE`, `BENCH_SCALE_TIMEOUT`; run alone without an earlier `results.json`, the \
suite puts this section into the report in place and keeps the others.\n"
    )
}
