//! The SQL the PostgreSQL store sends: the schema (version 1), the plpgsql
//! functions that make a claim, a finish and a poll one round trip each,
//! and the statements of every other method.
//!
//! Everything here is text with a `{s}` placeholder for the schema, filled
//! once at connect with the validated, quoted schema name. Values are
//! always parameters (`$n`), never spliced into the text.

/// The schema version this binary writes and understands.
pub(super) const VERSION: i64 = 1;

/// Is a schema's name, under the rule every store shares, safe to use.
/// `pg_` is reserved by PostgreSQL for its own schemas.
pub(super) fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    first_ok
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with("pg_")
}

/// The tables, indexes, sequence and functions of version 1. Run as one
/// simple-protocol batch inside the migration's transaction; `IF NOT
/// EXISTS` and `OR REPLACE` keep it harmless on a half-made schema.
const SCHEMA_V1: &str = r#"
CREATE TABLE IF NOT EXISTS {s}.schema_version (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    version BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS {s}.workers (
    name TEXT PRIMARY KEY,
    anchor TIMESTAMPTZ NOT NULL,
    enabled BOOLEAN NOT NULL,
    disabled_kind TEXT,
    disabled_reason TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    max_consecutive_failures INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 1,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    version BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS {s}.fires (
    id BIGSERIAL PRIMARY KEY,
    worker TEXT NOT NULL,
    scheduled_at TIMESTAMPTZ NOT NULL,
    scope_key TEXT NOT NULL DEFAULT '',
    instance TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    outcome TEXT NOT NULL,
    error TEXT,
    token BIGINT,
    lease_until TIMESTAMPTZ,
    adopter TEXT,
    claimant BIGINT,
    UNIQUE (worker, scheduled_at, scope_key)
);
-- A fire is 'adoptable' while outcome = 'lost' and finished_at IS NULL: its
-- holder stopped renewing its lease, an attempt is left, and `adopter` (the
-- replica whose poll found it) alone may claim it, until `lease_until`
-- (pushed back by each of the adopter's polls). Then it runs again
-- ('running', attempts continuing), is written off by the adopter
-- (finished_at set), or, the adopter gone, is taken over by another poll.
CREATE INDEX IF NOT EXISTS fires_by_worker ON {s}.fires (worker, scheduled_at DESC);
CREATE INDEX IF NOT EXISTS fires_running ON {s}.fires (worker) WHERE outcome = 'running';
CREATE INDEX IF NOT EXISTS fires_by_token ON {s}.fires (token) WHERE token IS NOT NULL;
CREATE INDEX IF NOT EXISTS fires_finished ON {s}.fires (finished_at);
CREATE INDEX IF NOT EXISTS fires_adoptable ON {s}.fires (adopter) WHERE outcome = 'lost' AND finished_at IS NULL;

CREATE TABLE IF NOT EXISTS {s}.instances (
    name TEXT PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_heartbeat TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE SEQUENCE IF NOT EXISTS {s}.tokens;

-- Claims a fire of a Cluster-scope worker: one call, one transaction.
-- Locks the worker rows involved in name order (claims never deadlock),
-- then: taken, busy (the worker, a conflict, a dependency), upstream
-- failed (recorded), or granted with a fresh fencing token and a lease
-- on the database clock. A lost fire this instance adopted (see the
-- fires table) is granted to it alone, as the run's next attempt; its
-- dependencies were judged by its first claim. `p_claimant` names the
-- store (one process's connection to the schema) that claims: a claim
-- it repeats because the answer was lost with its connection after the
-- commit is granted again, with the same token, while the lease holds.
CREATE OR REPLACE FUNCTION {s}.claim(
    p_worker TEXT, p_scheduled_at TIMESTAMPTZ, p_instance TEXT,
    p_conflicts TEXT[], p_depends_on TEXT[], p_lease_ms BIGINT, p_claimant BIGINT)
RETURNS TABLE (claim_result TEXT, claim_token BIGINT, claim_detail TEXT)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_holder TEXT;
    v_other TEXT;
    v_dep TEXT;
    v_outcome TEXT;
    v_token BIGINT;
    v_fire BIGINT;
    v_adopt BOOLEAN := FALSE;
    v_mine BOOLEAN := FALSE;
BEGIN
    -- Taken, known without waiting for a lock: the fire has a row that
    -- is neither this instance's to adopt nor its own claim repeated
    -- (both are judged under the locks below). A row is never removed
    -- while its slot can still be claimed, so the answer holds. This is
    -- what the replicas that did not win a fire pay for it.
    SELECT f.instance INTO v_holder FROM {s}.fires f
     WHERE f.worker = p_worker AND f.scheduled_at = p_scheduled_at AND f.scope_key = ''
       AND NOT (f.outcome = 'lost' AND f.finished_at IS NULL AND f.adopter IS NOT DISTINCT FROM p_instance)
       AND NOT (f.outcome = 'running' AND f.instance = p_instance AND f.claimant IS NOT DISTINCT FROM p_claimant);
    IF FOUND THEN
        RETURN QUERY SELECT 'taken'::TEXT, NULL::BIGINT, v_holder;
        RETURN;
    END IF;

    PERFORM 1 FROM {s}.workers w
     WHERE w.name = p_worker OR w.name = ANY (p_conflicts) OR w.name = ANY (p_depends_on)
     ORDER BY w.name
       FOR UPDATE;

    SELECT f.instance, f.id,
           coalesce(f.outcome = 'lost' AND f.finished_at IS NULL AND f.adopter = p_instance, FALSE),
           coalesce(f.outcome = 'running' AND f.instance = p_instance AND f.claimant = p_claimant
                    AND f.lease_until > now(), FALSE),
           f.token
      INTO v_holder, v_fire, v_adopt, v_mine, v_token FROM {s}.fires f
     WHERE f.worker = p_worker AND f.scheduled_at = p_scheduled_at AND f.scope_key = '';
    IF FOUND AND v_mine THEN
        RETURN QUERY SELECT 'granted'::TEXT, v_token, NULL::TEXT;
        RETURN;
    END IF;
    IF FOUND AND NOT v_adopt THEN
        RETURN QUERY SELECT 'taken'::TEXT, NULL::BIGINT, v_holder;
        RETURN;
    END IF;
    IF v_adopt THEN
        -- Without waiting: a poll that holds it locks worker rows next.
        PERFORM 1 FROM {s}.fires f
         WHERE f.id = v_fire AND f.outcome = 'lost' AND f.finished_at IS NULL AND f.adopter = p_instance
           FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'busy'::TEXT, NULL::BIGINT, p_worker || '''s lost fire is being taken over';
            RETURN;
        END IF;
    ELSE
        v_adopt := FALSE;
    END IF;

    -- The worker runs elsewhere, or its holder stopped renewing the lease
    -- and a poll has yet to record the run lost.
    SELECT f.instance INTO v_holder FROM {s}.fires f
     WHERE f.worker = p_worker AND f.outcome = 'running'
     LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT 'busy'::TEXT, NULL::BIGINT, p_worker || ' runs on ' || v_holder;
        RETURN;
    END IF;
    -- An older fire of the worker, lost with an attempt left, waits to be
    -- taken over: it goes first.
    SELECT f.instance INTO v_holder FROM {s}.fires f
     WHERE f.worker = p_worker AND f.outcome = 'lost' AND f.finished_at IS NULL
       AND f.id IS DISTINCT FROM v_fire
     LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT 'busy'::TEXT, NULL::BIGINT, p_worker || '''s fire lost on ' || v_holder || ' goes first';
        RETURN;
    END IF;

    SELECT f.worker, f.instance INTO v_other, v_holder FROM {s}.fires f
     WHERE f.worker = ANY (p_conflicts) AND f.outcome = 'running' AND f.lease_until > now()
     ORDER BY f.worker
     LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT 'busy'::TEXT, NULL::BIGINT, v_other || ' runs on ' || v_holder;
        RETURN;
    END IF;

    FOREACH v_dep IN ARRAY CASE WHEN v_adopt THEN '{}'::TEXT[] ELSE coalesce(p_depends_on, '{}'::TEXT[]) END LOOP
        SELECT f.outcome INTO v_outcome FROM {s}.fires f
         WHERE f.worker = v_dep AND f.scheduled_at <= p_scheduled_at
         ORDER BY f.scheduled_at DESC, f.id DESC
         LIMIT 1;
        CONTINUE WHEN NOT FOUND;
        IF v_outcome = 'running' THEN
            RETURN QUERY SELECT 'busy'::TEXT, NULL::BIGINT, v_dep || '''s fire has not finished';
            RETURN;
        ELSIF v_outcome IN ('failed', 'upstream_failed', 'lost', 'cancelled') THEN
            INSERT INTO {s}.fires (worker, scheduled_at, scope_key, instance, attempts, finished_at, outcome, error)
            VALUES (p_worker, p_scheduled_at, '', p_instance, 0, now(), 'upstream_failed',
                    'dependency ' || v_dep || ' failed')
            ON CONFLICT (worker, scheduled_at, scope_key) DO NOTHING;
            IF FOUND THEN
                RETURN QUERY SELECT 'upstream_failed'::TEXT, NULL::BIGINT, v_dep;
                RETURN;
            END IF;
            -- Another claim recorded it first (possible only for a worker
            -- without a row to lock): the fire is that claim's.
            SELECT f.instance INTO v_holder FROM {s}.fires f
             WHERE f.worker = p_worker AND f.scheduled_at = p_scheduled_at AND f.scope_key = '';
            RETURN QUERY SELECT 'taken'::TEXT, NULL::BIGINT, v_holder;
            RETURN;
        END IF;
    END LOOP;

    v_token := nextval('{s}.tokens');
    IF v_adopt THEN
        UPDATE {s}.fires f
           SET instance = p_instance, attempts = f.attempts + 1, outcome = 'running', error = NULL,
               started_at = coalesce(f.started_at, now()), token = v_token, adopter = NULL, claimant = p_claimant,
               lease_until = now() + p_lease_ms * INTERVAL '1 millisecond'
         WHERE f.id = v_fire;
        RETURN QUERY SELECT 'granted'::TEXT, v_token, NULL::TEXT;
        RETURN;
    END IF;
    INSERT INTO {s}.fires (worker, scheduled_at, scope_key, instance, attempts, started_at, outcome, token,
                           lease_until, claimant)
    VALUES (p_worker, p_scheduled_at, '', p_instance, 1, now(), 'running', v_token,
            now() + p_lease_ms * INTERVAL '1 millisecond', p_claimant)
    ON CONFLICT (worker, scheduled_at, scope_key) DO NOTHING;
    IF FOUND THEN
        RETURN QUERY SELECT 'granted'::TEXT, v_token, NULL::TEXT;
        RETURN;
    END IF;
    SELECT f.instance INTO v_holder FROM {s}.fires f
     WHERE f.worker = p_worker AND f.scheduled_at = p_scheduled_at AND f.scope_key = '';
    RETURN QUERY SELECT 'taken'::TEXT, NULL::BIGINT, v_holder;
END
$fn$;

-- Records how a run ended, and its worker's failure count and auto-disable:
-- one call. With a token, the write is fenced: it applies only while that
-- token holds the fire (still running); otherwise nothing changes and the
-- function returns 1 (refused). Returns 0 when kept.
-- One exception: a run that ended while its instance could not reach the
-- database for longer than the lease (a server restart) was recorded
-- 'lost' by another replica's poll. Its end (succeeded or failed, not a
-- cancellation), arriving late, is kept as long as no replica has claimed
-- the fire since (the token still names it): that run is the fire's, and
-- it ended so. A fire already counted as a failure (lost for good) is not
-- counted twice.
CREATE OR REPLACE FUNCTION {s}.finish(
    p_worker TEXT, p_scheduled_at TIMESTAMPTZ, p_scope_key TEXT, p_instance TEXT, p_token BIGINT,
    p_finished_at TIMESTAMPTZ, p_attempts INTEGER, p_outcome TEXT, p_error TEXT,
    p_consecutive_failures INTEGER, p_threshold INTEGER)
RETURNS INTEGER
LANGUAGE plpgsql AS $fn$
DECLARE
    v_counted BOOLEAN;
BEGIN
    IF p_token IS NULL THEN
        INSERT INTO {s}.fires (worker, scheduled_at, scope_key, instance, attempts, finished_at, outcome, error)
        VALUES (p_worker, p_scheduled_at, p_scope_key, p_instance, p_attempts, p_finished_at, p_outcome, p_error)
        ON CONFLICT (worker, scheduled_at, scope_key) DO UPDATE
           SET finished_at = excluded.finished_at, attempts = excluded.attempts,
               outcome = excluded.outcome, error = excluded.error, lease_until = NULL;
        UPDATE {s}.workers w
           SET consecutive_failures = p_consecutive_failures, updated_at = now()
         WHERE w.name = p_worker;
    ELSE
        SELECT f.outcome = 'lost' AND f.finished_at IS NOT NULL INTO v_counted FROM {s}.fires f
         WHERE f.token = p_token
           AND f.worker = p_worker AND f.scheduled_at = p_scheduled_at AND f.scope_key = p_scope_key;
        UPDATE {s}.fires f
           SET finished_at = p_finished_at, attempts = p_attempts, outcome = p_outcome, error = p_error,
               lease_until = NULL, adopter = NULL
         WHERE f.token = p_token
           AND (f.outcome = 'running' OR (f.outcome = 'lost' AND p_outcome IN ('succeeded', 'failed')))
           AND f.worker = p_worker AND f.scheduled_at = p_scheduled_at AND f.scope_key = p_scope_key;
        IF NOT FOUND THEN
            RETURN 1;
        END IF;
        -- The count is cluster-wide: this replica's own count is not it.
        UPDATE {s}.workers w
           SET consecutive_failures = CASE p_outcome
                   WHEN 'succeeded' THEN 0
                   WHEN 'failed' THEN w.consecutive_failures + CASE WHEN v_counted THEN 0 ELSE 1 END
                   ELSE w.consecutive_failures END,
               updated_at = now()
         WHERE w.name = p_worker;
    END IF;
    UPDATE {s}.workers w
       SET enabled = FALSE, disabled_kind = 'failures', disabled_reason = p_error,
           version = w.version + 1, updated_at = now()
     WHERE w.name = p_worker AND w.enabled AND p_threshold > 0 AND w.consecutive_failures >= p_threshold;
    RETURN 0;
END
$fn$;

-- A replica's poll: heartbeat, forget silent replicas, take over the fires
-- whose holder stopped renewing (recorded 'lost'), and return them, the
-- fires of Cluster workers running under a live lease (kind 'running',
-- with their holder) and every worker's shared state. A lost fire of a Cluster worker with an
-- attempt left (attempts < max_attempts, worker enabled) becomes adoptable
-- by this instance (kind 'adopt', out_count = attempts so far; handed to
-- it again at each of its polls until it claims it) and is not
-- a failure yet; any other is lost for good (kind 'lost'), counted as a
-- failure of its worker, with auto-disable. The same holds for an
-- adoptable fire whose adopter stopped polling. Concurrent polls split the
-- takeover (SKIP LOCKED) and lock worker rows in name order, as claims do.
CREATE OR REPLACE FUNCTION {s}.poll(p_instance TEXT, p_lease_ms BIGINT)
RETURNS TABLE (out_kind TEXT, out_worker TEXT, out_enabled BOOLEAN, out_disabled_kind TEXT,
               out_disabled_reason TEXT, out_count INTEGER, out_scheduled_at TIMESTAMPTZ, out_instance TEXT)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_silent TIMESTAMPTZ := now() - 3 * p_lease_ms * INTERVAL '1 millisecond';
    v_until TIMESTAMPTZ := now() + p_lease_ms * INTERVAL '1 millisecond';
    -- Leases that ended before this are lapsed. For one lease after the
    -- server (re)started, none is: a holder cut off by the restart gets
    -- that long to reconnect and write how its run ended, or renew, before
    -- its fire is taken over (else a run that ended during the outage
    -- would be run again as its next attempt).
    v_lapsed TIMESTAMPTZ := CASE WHEN now() < pg_postmaster_start_time() + p_lease_ms * INTERVAL '1 millisecond'
                                 THEN '-infinity'::TIMESTAMPTZ ELSE now() END;
    v_workers TEXT[] := '{}';
    v_times TIMESTAMPTZ[] := '{}';
    v_instances TEXT[] := '{}';
    v_adopt_workers TEXT[] := '{}';
    v_adopt_times TIMESTAMPTZ[] := '{}';
    v_adopt_instances TEXT[] := '{}';
    v_adopt_attempts INTEGER[] := '{}';
    v_fire RECORD;
    v_retry BOOLEAN;
    v_worker TEXT;
    v_count INTEGER;
    v_instance TEXT;
BEGIN
    INSERT INTO {s}.instances (name, started_at, last_heartbeat) VALUES (p_instance, now(), now())
    ON CONFLICT (name) DO UPDATE SET last_heartbeat = now();

    DELETE FROM {s}.instances i
     WHERE i.name IN (SELECT d.name FROM {s}.instances d WHERE d.last_heartbeat < v_silent
                       ORDER BY d.name FOR UPDATE SKIP LOCKED);

    -- This instance's adoptions stay its own while it polls, and are handed
    -- to it again until it claims or writes them off (an answer may be lost).
    FOR v_fire IN
        UPDATE {s}.fires f SET lease_until = v_until
         WHERE f.id IN (SELECT a.id FROM {s}.fires a
                         WHERE a.outcome = 'lost' AND a.finished_at IS NULL AND a.adopter = p_instance
                           FOR UPDATE SKIP LOCKED)
        RETURNING f.worker, f.scheduled_at, f.instance, f.attempts
    LOOP
        v_adopt_workers := v_adopt_workers || v_fire.worker;
        v_adopt_times := v_adopt_times || v_fire.scheduled_at;
        v_adopt_instances := v_adopt_instances || v_fire.instance;
        v_adopt_attempts := v_adopt_attempts || v_fire.attempts;
    END LOOP;

    FOR v_fire IN
        SELECT f.id, f.worker, f.scheduled_at, f.instance, f.attempts, f.outcome, f.token FROM {s}.fires f
         WHERE (f.outcome = 'running'
                AND CASE WHEN f.token IS NOT NULL THEN f.lease_until < v_lapsed
                         ELSE NOT EXISTS (SELECT 1 FROM {s}.instances i
                                           WHERE i.name = f.instance AND i.last_heartbeat >= v_silent) END)
            OR (f.outcome = 'lost' AND f.finished_at IS NULL AND f.lease_until < v_lapsed)
         ORDER BY f.id
           FOR UPDATE SKIP LOCKED
    LOOP
        SELECT w.enabled AND v_fire.attempts < w.max_attempts INTO v_retry
          FROM {s}.workers w WHERE w.name = v_fire.worker;
        v_retry := coalesce(v_retry, FALSE) AND v_fire.token IS NOT NULL;
        UPDATE {s}.fires f
           SET outcome = 'lost',
               finished_at = CASE WHEN v_retry THEN NULL ELSE now() END,
               lease_until = CASE WHEN v_retry THEN v_until END,
               adopter = CASE WHEN v_retry THEN p_instance ELSE f.adopter END,
               error = CASE WHEN v_fire.outcome = 'running'
                            THEN 'instance ' || f.instance || ' stopped renewing its lease' ELSE f.error END
         WHERE f.id = v_fire.id;
        IF v_retry THEN
            v_adopt_workers := v_adopt_workers || v_fire.worker;
            v_adopt_times := v_adopt_times || v_fire.scheduled_at;
            v_adopt_instances := v_adopt_instances || v_fire.instance;
            v_adopt_attempts := v_adopt_attempts || v_fire.attempts;
        ELSE
            v_workers := v_workers || v_fire.worker;
            v_times := v_times || v_fire.scheduled_at;
            v_instances := v_instances || v_fire.instance;
        END IF;
    END LOOP;

    FOR v_worker, v_count, v_instance IN
        SELECT u.worker, count(*)::INTEGER, min(u.instance)
          FROM unnest(v_workers, v_instances) AS u(worker, instance)
         GROUP BY u.worker
         ORDER BY u.worker
    LOOP
        UPDATE {s}.workers w
           SET consecutive_failures = w.consecutive_failures + v_count, updated_at = now()
         WHERE w.name = v_worker;
        UPDATE {s}.workers w
           SET enabled = FALSE, disabled_kind = 'failures',
               disabled_reason = 'instance ' || v_instance || ' stopped renewing its lease',
               version = w.version + 1, updated_at = now()
         WHERE w.name = v_worker AND w.enabled AND w.max_consecutive_failures > 0
           AND w.consecutive_failures >= w.max_consecutive_failures;
    END LOOP;

    RETURN QUERY
        SELECT 'lost'::TEXT, u.worker, NULL::BOOLEAN, NULL::TEXT, NULL::TEXT, NULL::INTEGER, u.at, u.instance
          FROM unnest(v_workers, v_times, v_instances) AS u(worker, at, instance)
         ORDER BY u.worker, u.at;
    RETURN QUERY
        SELECT 'adopt'::TEXT, u.worker, NULL::BOOLEAN, NULL::TEXT, NULL::TEXT, u.attempts, u.at, u.instance
          FROM unnest(v_adopt_workers, v_adopt_times, v_adopt_instances, v_adopt_attempts)
               AS u(worker, at, instance, attempts)
         ORDER BY u.worker, u.at;
    -- Who runs what now: the fires of Cluster workers held under a live lease.
    RETURN QUERY
        SELECT 'running'::TEXT, f.worker, NULL::BOOLEAN, NULL::TEXT, NULL::TEXT, f.attempts, f.scheduled_at,
               f.instance
          FROM {s}.fires f
         WHERE f.outcome = 'running' AND f.scope_key = '' AND f.lease_until > now()
         ORDER BY f.worker, f.scheduled_at;
    RETURN QUERY
        SELECT 'worker'::TEXT, w.name, w.enabled, w.disabled_kind, w.disabled_reason, w.consecutive_failures,
               NULL::TIMESTAMPTZ, NULL::TEXT
          FROM {s}.workers w
         ORDER BY w.name;
END
$fn$;

INSERT INTO {s}.schema_version (singleton, version) VALUES (TRUE, 1)
ON CONFLICT (singleton) DO UPDATE SET version = excluded.version;
"#;

/// Serialises migrations of one schema across replicas (a transaction-level
/// lock: released at commit, fine behind a transaction pooler). `$1`: a key
/// naming the schema.
pub(super) const MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";

/// Whether the schema and its version table exist. `$1`: the schema name.
/// Read through the catalogs with the statement's snapshot, so a schema that
/// another replica committed while this one waited for the lock is seen.
pub(super) const MIGRATION_STATE: &str = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1), \
     EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = 'schema_version')";

/// Every statement, with the schema filled in.
#[derive(Debug)]
pub(super) struct Sql {
    pub create_schema: String,
    pub schema_v1: String,
    pub version: String,
    pub open: String,
    pub started: String,
    pub started_fenced: String,
    pub attempt: String,
    pub attempt_fenced: String,
    pub finish: String,
    pub dropped: String,
    pub state: String,
    pub history: String,
    pub prune: String,
    pub claim: String,
    pub renew: String,
    pub poll: String,
    pub instances: String,
    pub leave: String,
}

impl Sql {
    /// The statements of `schema` (already validated).
    pub(super) fn new(schema: &str) -> Sql {
        let quoted = format!("\"{schema}\"");
        let fill = |text: &str| text.replace("{s}", &quoted);
        Sql {
            create_schema: fill("CREATE SCHEMA IF NOT EXISTS {s}"),
            schema_v1: fill(SCHEMA_V1),
            version: fill("SELECT max(version) FROM {s}.schema_version"),
            // One statement: registers the instance, creates the unknown
            // workers (in name order: concurrent opens never deadlock),
            // refreshes the thresholds and attempt budgets of known ones, and reads back every
            // given worker with its latest fire.
            open: fill(
                "WITH registered AS ( \
                     INSERT INTO {s}.instances (name, started_at, last_heartbeat) VALUES ($1, now(), now()) \
                     ON CONFLICT (name) DO UPDATE SET last_heartbeat = now() \
                     RETURNING 1 \
                 ), known AS ( \
                     INSERT INTO {s}.workers AS w \
                            (name, anchor, enabled, disabled_kind, max_consecutive_failures, max_attempts) \
                     SELECT u.name, u.anchor, u.enabled, CASE WHEN u.enabled THEN NULL ELSE 'configured' END, \
                            u.threshold, u.attempts \
                       FROM unnest($2::TEXT[], $3::TIMESTAMPTZ[], $4::BOOLEAN[], $5::INTEGER[], $6::INTEGER[]) \
                            AS u(name, anchor, enabled, threshold, attempts) \
                      ORDER BY u.name \
                     ON CONFLICT (name) DO UPDATE SET max_consecutive_failures = excluded.max_consecutive_failures, \
                            max_attempts = excluded.max_attempts \
                     RETURNING w.name, w.anchor, w.enabled, w.disabled_kind, w.disabled_reason, w.consecutive_failures \
                 ) \
                 SELECT k.name, k.anchor, k.enabled, k.disabled_kind, k.disabled_reason, k.consecutive_failures, \
                        f.scheduled_at, f.outcome \
                   FROM known k \
                   LEFT JOIN LATERAL ( \
                       SELECT x.scheduled_at, x.outcome FROM {s}.fires x WHERE x.worker = k.name \
                        ORDER BY x.scheduled_at DESC, x.id DESC LIMIT 1 \
                   ) f ON TRUE",
            ),
            // $1 worker, $2 scheduled_at, $3 scope_key, $4 instance, $5 started_at
            started: fill(
                "INSERT INTO {s}.fires (worker, scheduled_at, scope_key, instance, attempts, started_at, outcome) \
                 VALUES ($1, $2, $3, $4, 1, $5, 'running') \
                 ON CONFLICT (worker, scheduled_at, scope_key) DO UPDATE \
                    SET instance = excluded.instance, attempts = 1, started_at = excluded.started_at, \
                        finished_at = NULL, outcome = 'running', error = NULL, token = NULL, lease_until = NULL",
            ),
            // The same with $6 token, $7 lease in ms: a re-run is recorded
            // only while the token still holds the fire.
            started_fenced: fill(
                "INSERT INTO {s}.fires AS f \
                        (worker, scheduled_at, scope_key, instance, attempts, started_at, outcome, token, lease_until) \
                 VALUES ($1, $2, $3, $4, 1, $5, 'running', $6, now() + $7 * INTERVAL '1 millisecond') \
                 ON CONFLICT (worker, scheduled_at, scope_key) DO UPDATE \
                    SET instance = excluded.instance, attempts = 1, started_at = excluded.started_at, \
                        finished_at = NULL, error = NULL \
                  WHERE f.token = excluded.token AND f.outcome = 'running'",
            ),
            // $1 worker, $2 scheduled_at, $3 scope_key, $4 attempts
            attempt: fill(
                "UPDATE {s}.fires SET attempts = $4 WHERE worker = $1 AND scheduled_at = $2 AND scope_key = $3",
            ),
            // The same with $5 token.
            attempt_fenced: fill(
                "UPDATE {s}.fires SET attempts = $4 \
                  WHERE worker = $1 AND scheduled_at = $2 AND scope_key = $3 AND token = $5 AND outcome = 'running'",
            ),
            finish: fill("SELECT {s}.finish($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
            // $1 worker, $2 scheduled_at, $3 scope_key, $4 instance, $5 at, $6 outcome, $7 error.
            // On a lost fire this instance adopted, it writes the fire off:
            // it stays lost, for good, saying why it was not retried.
            dropped: fill(
                "INSERT INTO {s}.fires AS f \
                        (worker, scheduled_at, scope_key, instance, attempts, finished_at, outcome, error) \
                 VALUES ($1, $2, $3, $4, 0, $5, $6, $7) \
                 ON CONFLICT (worker, scheduled_at, scope_key) DO UPDATE \
                    SET finished_at = excluded.finished_at, lease_until = NULL, \
                        error = concat_ws('; ', f.error, 'not retried: ' || excluded.error) \
                  WHERE f.outcome = 'lost' AND f.finished_at IS NULL AND f.adopter = excluded.instance",
            ),
            // $1 worker, $2 enabled, $3 kind, $4 reason, $5 failures
            state: fill(
                "UPDATE {s}.workers \
                    SET enabled = $2, disabled_kind = $3, disabled_reason = $4, consecutive_failures = $5, \
                        version = version + 1, updated_at = now() \
                  WHERE name = $1",
            ),
            history: fill(
                "SELECT worker, scheduled_at, instance, attempts, started_at, finished_at, outcome, error \
                   FROM {s}.fires WHERE worker = $1 \
                  ORDER BY scheduled_at DESC, id DESC LIMIT $2",
            ),
            prune: fill("DELETE FROM {s}.fires WHERE outcome <> 'running' AND finished_at < $1"),
            claim: fill("SELECT claim_result, claim_token, claim_detail FROM {s}.claim($1, $2, $3, $4, $5, $6, $7)"),
            // $1 tokens, $2 instance, $3 lease in ms
            renew: fill(
                "UPDATE {s}.fires SET lease_until = now() + $3 * INTERVAL '1 millisecond' \
                  WHERE token = ANY ($1) AND instance = $2 AND outcome = 'running' \
                 RETURNING token",
            ),
            poll: fill(
                "SELECT out_kind, out_worker, out_enabled, out_disabled_kind, out_disabled_reason, out_count, \
                        out_scheduled_at, out_instance \
                   FROM {s}.poll($1, $2)",
            ),
            // $1 three leases in ms
            instances: fill(
                "SELECT name, started_at, last_heartbeat FROM {s}.instances \
                  WHERE last_heartbeat >= now() - $1 * INTERVAL '1 millisecond' ORDER BY name",
            ),
            // Releases what the instance still holds or adopted (the next
            // poll of any replica takes it over) and deregisters it.
            leave: fill(
                "WITH released AS ( \
                     UPDATE {s}.fires SET lease_until = now() \
                      WHERE (instance = $1 AND outcome = 'running' AND token IS NOT NULL) \
                         OR (adopter = $1 AND outcome = 'lost' AND finished_at IS NULL) \
                     RETURNING 1 \
                 ) \
                 DELETE FROM {s}.instances WHERE name = $1",
            ),
        }
    }
}

/// The LISTEN/NOTIFY channel of a schema: an identifier of at most 63
/// bytes (PostgreSQL truncates longer ones, and `pg_notify` refuses them).
pub(super) fn channel(schema: &str) -> String {
    let mut channel = format!("{schema}_changed");
    channel.truncate(63);
    channel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_follow_the_identifier_rule() {
        for good in ["orchestrator", "_x", "a1_b2", &"a".repeat(63)] {
            assert!(valid_schema(good), "{good}");
        }
        for bad in ["", "1a", "A", "x; drop table", "x-y", "x.y", "pg_x", "\"x\"", &"a".repeat(64), "é"] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }

    #[test]
    fn channels_fit_an_identifier() {
        assert_eq!(channel("orchestrator"), "orchestrator_changed");
        assert_eq!(channel(&"a".repeat(63)).len(), 63);
    }

    #[test]
    fn every_statement_names_the_quoted_schema() {
        let sql = Sql::new("my_schema");
        assert!(sql.claim.contains("\"my_schema\".claim("));
        assert!(!sql.schema_v1.contains("{s}"));
        assert!(sql.schema_v1.contains("nextval('\"my_schema\".tokens')"));
    }
}
