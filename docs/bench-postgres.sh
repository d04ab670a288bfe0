#!/usr/bin/env bash
# The PostgreSQL rows of BENCHMARKS.md, measured side by side in one run:
# - each scenario on the embedded store and on PostgreSQL, one after the other, RUNS times, every run with the
#   reference relay (`--reference-relay`), the PostgreSQL runs each on a new empty database;
# - what each message cost the database: transactions, WAL bytes and rows, from its statistics before and after;
# - pgbench on the same database server with the transaction the store's group commit is made of (bump one
#   conversation's counter, insert 64 rows of 100 bytes under a unique index on the client id), and with one row.
#   cargo build --release -p palomar
# Usage: docs/bench-postgres.sh   (BIN=the palomar binary, default target/release/palomar; RUNS=3; PGHOST, PGPORT,
#   PGUSER: a PostgreSQL server on this machine where databases may be created, default postgres@127.0.0.1:5432;
#   OUT=a directory for the JSON reports, default a new temporary one; SCENARIOS="fanout-10 fanout-200 ingest-64")
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/palomar}
RUNS=${RUNS:-3}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
OUT=${OUT:-$(mktemp -d)}
SCENARIOS=${SCENARIOS:-"fanout-10 fanout-200 ingest-64"}
DB=palomar_bench
URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB"
mkdir -p "$OUT"

sql() { psql -AtqX -v ON_ERROR_STOP=1 "$@"; }
fresh() { sql -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; }
# WAL written (cluster-wide), xact_commit and rows inserted and updated in the bench database. xact_commit counts
# more than the explicit transactions (about two per group commit of the server: see BENCHMARKS.md).
stats() {
    sql -d "$DB" -c "SELECT pg_stat_force_next_flush()" >/dev/null
    sql -d "$DB" -F ' ' -c "SELECT pg_current_wal_lsn() - '0/0', xact_commit, tup_inserted, tup_updated
                            FROM pg_stat_database WHERE datname = current_database()"
}

flags() {
    case $1 in
        fanout-10) echo "--clients 10 --rooms 1 --senders 2 --in-flight 1" ;;
        fanout-200) echo "--clients 200 --rooms 1 --senders 40 --in-flight 1" ;;
        ingest-64) echo "--clients 200 --rooms 100 --senders 100 --in-flight 64" ;;
        *) echo "unknown scenario $1" >&2; exit 2 ;;
    esac
}

B="$BIN bench --spawn --size 100 --duration 10 --reference-relay --json --durability full"
for scenario in $SCENARIOS; do
    for run in $(seq 1 "$RUNS"); do
        # shellcheck disable=SC2046
        $B $(flags "$scenario") >"$OUT/$scenario-sqlite-$run.json"
        fresh "$DB"
        before=$(stats)
        # shellcheck disable=SC2046
        $B $(flags "$scenario") --store "$URL" >"$OUT/$scenario-postgres-$run.json"
        sleep 1
        echo "$before $(stats)" >"$OUT/$scenario-postgres-$run.stats"
        echo "$scenario run $run done" >&2
    done
done

# pgbench: 100 conversations, 4 clients, 10 s each.
fresh palomar_pgbench
sql -d palomar_pgbench -c "
    CREATE TABLE conversations (id BIGINT PRIMARY KEY, last_seq BIGINT NOT NULL);
    INSERT INTO conversations SELECT g, 0 FROM generate_series(1, 100) g;
    CREATE TABLE messages (conversation BIGINT NOT NULL, seq BIGINT NOT NULL, sender TEXT NOT NULL,
        client_id BYTEA NOT NULL, ts BIGINT NOT NULL, text TEXT NOT NULL, PRIMARY KEY (conversation, seq));
    CREATE UNIQUE INDEX messages_by_client_id ON messages (client_id, sender);"
for rows in 64 1; do
    cat >"$OUT/pgbench-$rows.sql" <<EOF
\set c random(1, 100)
BEGIN;
UPDATE conversations SET last_seq = last_seq + $rows WHERE id = :c RETURNING last_seq \gset
INSERT INTO messages (conversation, seq, sender, client_id, ts, text)
    SELECT :c, :last_seq - $rows + g, 'pgbench', decode(md5(random()::text || g), 'hex'), 0, repeat('x', 100)
    FROM generate_series(1, $rows) g;
END;
EOF
    pgbench -n -c 4 -j 2 -T 10 -f "$OUT/pgbench-$rows.sql" palomar_pgbench >"$OUT/pgbench-$rows.out" 2>&1
done
sql -d postgres -c "DROP DATABASE palomar_pgbench"

python3 - "$OUT" "$SCENARIOS" "$RUNS" <<'EOF'
import json, re, statistics, sys
out, scenarios, runs = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])

def spread(values, fmt):
    values = sorted(values)
    return f"{fmt(statistics.median(values))} ({fmt(values[0])}–{fmt(values[-1])})"

for scenario in scenarios:
    ingest = scenario.startswith("ingest")
    rate = "acks_per_sec" if ingest else "deliveries_per_sec"
    per = "message" if ingest else "delivery"
    print(f"## {scenario} ({'acked msg/s' if ingest else 'deliveries/s'}, median (min–max) of {runs})")
    reports = {}
    for store in ("sqlite", "postgres"):
        reports[store] = [json.load(open(f"{out}/{scenario}-{store}-{run}.json")) for run in range(1, runs + 1)]
        rs = reports[store]
        print(f"{store:9} {spread([r['palomar'][rate] for r in rs], lambda v: f'{v:,.0f}')}"
              f"  ×relay {spread([r['palomar_vs_relay'][rate] for r in rs], lambda v: f'{v:.2f}')}"
              f"  server CPU/{per} {spread([r['palomar'][f'server_cpu_us_per_{per}'] for r in rs], lambda v: f'{v:.2f} µs')}"
              + (f"  database CPU/{per} {spread([r['palomar'][f'database_cpu_us_per_{per}'] for r in rs], lambda v: f'{v:.2f} µs')}"
                 if store == "postgres" else "")
              + f"  p99 {spread([r['palomar']['delivery_latency_us']['p99'] / 1000 for r in rs], lambda v: f'{v:.1f} ms')}"
              + f"  ok {all(r['ok'] for r in rs)}")
    ratios = [p["palomar"][rate] / s["palomar"][rate] for p, s in zip(reports["postgres"], reports["sqlite"])]
    print(f"postgres/sqlite, run by run: {spread(ratios, lambda v: f'{v:.2f}')}")
    for run in range(1, runs + 1):
        wal0, tx0, ins0, upd0, wal1, tx1, ins1, upd1 = map(int, open(f"{out}/{scenario}-postgres-{run}.stats").read().split())
        acked = reports["postgres"][run - 1]["palomar"]["acked"]
        print(f"  run {run}: {acked:,} messages, {tx1 - tx0:,} xact_commit ({acked / max(tx1 - tx0, 1):.1f} msg each), "
              f"{(wal1 - wal0) / acked:,.0f} WAL bytes/msg, {(ins1 - ins0) / acked:.2f} rows inserted and "
              f"{(upd1 - upd0) / acked:.2f} updated per msg")
    print()

for rows in (64, 1):
    text = open(f"{out}/pgbench-{rows}.out").read()
    tps = float(re.search(r"tps = ([0-9.]+)", text).group(1))
    latency = re.search(r"latency average = ([0-9.]+) ms", text).group(1)
    print(f"pgbench, {rows} row(s) per transaction, 4 clients: {tps:,.0f} tx/s, {tps * rows:,.0f} rows/s, {latency} ms average")
print(f"reports in {out}")
EOF
