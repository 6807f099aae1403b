//! A fleet of servers behind one Redis (docs/fleet.md): users and REST secrets read from
//! Redis, allocation quotas enforced across the fleet with atomic Lua scripts, and a
//! lease per instance so a dead instance's allocations stop counting.
//!
//! One task per server process talks to Redis. The TURN cores never wait for it: an
//! Allocate waits in its core (floe-turn's `fleet.rs`) while this task asks Redis, and
//! everything else, the relayed packets included, goes on. When Redis cannot be
//! reached, Allocates are answered by policy ([`FleetOptions::fail_open`]), the task
//! reconnects with backoff, and once back it publishes this instance's counts again.
//!
//! Key layout, for realm `R` (coturn's for users, so `turnadmin` and coturn's
//! documented `redis-cli` commands work; floe's own under `floe/`):
//!
//! | key | type | what |
//! |---|---|---|
//! | `turn/realm/R/user/NAME/key` | string | long-term key in hex: 32 digits MD5 (coturn), 64 SHA-256 |
//! | `turn/realm/R/user/NAME/key-sha256` | string | SHA-256 long-term key in hex (floe) |
//! | `turn/realm/R/secret` | set | TURN REST shared secrets (coturn) |
//! | `turn/realm/R/revoked` | set | revoked user and REST names: 403 (floe) |
//! | `turn/realm/R/user-quota` | string | allocations per user in the fleet (coturn) |
//! | `turn/realm/R/total-quota` | string | allocations in the fleet (coturn) |
//! | `turn/realm/R/floe/instances` | sorted set | instance id, scored by its lease's end (ms, Redis clock) |
//! | `turn/realm/R/floe/instance/ID/users` | hash | user → allocations on that instance |
//! | `turn/realm/R/floe/instance/ID/total` | string | allocations on that instance |

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use floe_turn::server::{FleetAnswer, FleetOp, StoredKey, StoredUsers};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::Inbound;

/// How `floe serve --redis` reaches the fleet's Redis.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FleetOptions {
    /// `redis://[USER:PASSWORD@]HOST:PORT/DB`, or `rediss://` for TLS.
    pub url: String,
    /// With `rediss://`: PEM certificates to trust instead of the system's roots (a
    /// private CA, or the Redis server's own self-signed certificate).
    pub ca_pem: Option<Vec<u8>>,
    /// This instance's name in the fleet; unique per running process (default: random).
    pub instance: String,
    /// How long this instance's allocations count after it was last heard from.
    /// Renewed every third of it. Default 10 s.
    pub lease: Duration,
    /// How often users, secrets, revocations and quotas are read again. Default 2 s.
    pub poll: Duration,
    /// Longest wait for a connection or an answer from Redis. Default 1 s.
    pub timeout: Duration,
    /// While Redis cannot be reached, grant Allocates that the local limits allow
    /// (and count them once Redis is back) instead of answering 500.
    pub fail_open: bool,
}

impl FleetOptions {
    /// Defaults for `url`.
    pub fn new(url: &str) -> FleetOptions {
        FleetOptions {
            url: url.to_owned(),
            ca_pem: None,
            instance: format!("{:016x}", rand::random::<u64>()),
            lease: Duration::from_secs(10),
            poll: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            fail_open: false,
        }
    }
}

/// Redis health, for the metrics and tests.
#[derive(Debug, Default)]
pub struct FleetHealth {
    up: AtomicBool,
    errors: AtomicU64,
    refused: AtomicU64,
    granted_open: AtomicU64,
    users: AtomicU64,
    syncs: AtomicU64,
}

impl FleetHealth {
    /// Whether the last exchange with Redis worked.
    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
    /// Failed connections and commands.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
    /// Allocates answered 500 because Redis could not be asked.
    pub fn refused_unavailable(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
    /// Allocates granted without Redis (`fail_open`).
    pub fn granted_unavailable(&self) -> u64 {
        self.granted_open.load(Ordering::Relaxed)
    }
    /// Users with keys read from Redis.
    pub fn users(&self) -> u64 {
        self.users.load(Ordering::Relaxed)
    }
    /// Completed reads of the users.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

/// An operation from worker `worker`'s core.
#[derive(Debug)]
pub(crate) struct FleetRequest {
    pub(crate) worker: usize,
    pub(crate) op: FleetOp,
}

/// Takes a place if the user's and the fleet's counts allow. Instances whose lease
/// ended are removed first, with their counts. Returns {code, present}: code 0 granted,
/// 1 the user's quota is full, 2 the fleet is full; present 0 when this instance had no
/// lease (its counts were removed as a dead instance's and must be published again).
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix, me, user = ARGV[1], ARGV[2], ARGV[3]
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  if id ~= me then
    redis.call('DEL', prefix .. id .. '/users', prefix .. id .. '/total')
    redis.call('ZREM', KEYS[1], id)
  end
end
local present = redis.call('ZSCORE', KEYS[1], me) and 1 or 0
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[6]), me)
local user_n, total_n = 0, 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  user_n = user_n + tonumber(redis.call('HGET', prefix .. id .. '/users', user) or '0')
  total_n = total_n + tonumber(redis.call('GET', prefix .. id .. '/total') or '0')
end
if user_n >= tonumber(ARGV[4]) then return {1, present} end
if total_n >= tonumber(ARGV[5]) then return {2, present} end
redis.call('HINCRBY', prefix .. me .. '/users', user, 1)
redis.call('INCR', prefix .. me .. '/total')
return {0, present}
";

/// Gives a place back.
const RELEASE: &str = r"
local prefix, me, user = ARGV[1], ARGV[2], ARGV[3]
local users = prefix .. me .. '/users'
if redis.call('HINCRBY', users, user, -1) <= 0 then redis.call('HDEL', users, user) end
if redis.call('DECR', prefix .. me .. '/total') < 0 then
  redis.call('SET', prefix .. me .. '/total', 0)
end
return 0
";

/// Renews this instance's lease; returns 0 (and renews nothing) if it had none.
const LEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
";

/// Replaces this instance's counts with ARGV[5..] (user, count pairs) and ARGV[4] in
/// all, and renews its lease.
const PUBLISH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix, me = ARGV[1], ARGV[2]
redis.call('DEL', prefix .. me .. '/users')
for i = 5, #ARGV, 2 do redis.call('HSET', prefix .. me .. '/users', ARGV[i], ARGV[i + 1]) end
redis.call('SET', prefix .. me .. '/total', ARGV[4])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), me)
return 1
";

/// Removes this instance (a clean shutdown).
const LEAVE: &str = r"
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('DEL', ARGV[1] .. ARGV[2] .. '/users', ARGV[1] .. ARGV[2] .. '/total')
return 1
";

/// The realm's REST secrets, revoked names, user quota and total quota, as read.
type RealmSettings = (Vec<String>, Vec<String>, Option<String>, Option<String>);

/// Most keys asked for in one MGET while reading the users.
const MGET_CHUNK: usize = 500;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Most operations sent to Redis in one pipeline.
const MAX_BATCH: usize = 256;

/// The fleet task's state.
pub(crate) struct Fleet {
    opts: FleetOptions,
    client: redis::Client,
    conn: Option<MultiplexedConnection>,
    scripts: [Script; 5],
    realm_prefix: String,
    /// Default quotas (the configuration), overridden by the realm's keys.
    defaults: (u64, u64),
    quotas: (u64, u64),
    workers: Vec<mpsc::Sender<Inbound>>,
    /// Places this instance holds, per user: what it publishes after an outage.
    local: HashMap<String, u64>,
    /// Redis may disagree with `local` (a command failed, or Redis lost its data).
    dirty: bool,
    backoff: Duration,
    next_connect: Instant,
    stored: Option<Arc<StoredUsers>>,
    health: Arc<FleetHealth>,
}

impl Fleet {
    /// A fleet client for `realm`, answering `workers`; quotas default to
    /// `max_per_user` and `max_total`.
    pub(crate) fn new(
        opts: FleetOptions,
        realm: &str,
        max_per_user: usize,
        max_total: usize,
        workers: Vec<mpsc::Sender<Inbound>>,
    ) -> Result<Fleet, String> {
        let client = match &opts.ca_pem {
            Some(pem) => redis::Client::build_with_tls(
                opts.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(opts.url.as_str()),
        }
        .map_err(|e| format!("--redis {}: {e}", redact(&opts.url)))?;
        if opts.instance.is_empty() || opts.instance.contains('/') {
            return Err("the fleet instance name must be non-empty and without '/'".into());
        }
        let defaults = (max_per_user as u64, max_total as u64);
        Ok(Fleet {
            client,
            conn: None,
            scripts: [ACQUIRE, RELEASE, LEASE, PUBLISH, LEAVE].map(Script::new),
            realm_prefix: format!("turn/realm/{realm}/"),
            defaults,
            quotas: defaults,
            workers,
            local: HashMap::new(),
            dirty: true,
            backoff: Duration::from_millis(100),
            next_connect: Instant::now(),
            stored: None,
            health: Arc::new(FleetHealth::default()),
            opts,
        })
    }

    pub(crate) fn health(&self) -> Arc<FleetHealth> {
        self.health.clone()
    }

    fn instances_key(&self) -> String {
        format!("{}floe/instances", self.realm_prefix)
    }

    fn instance_prefix(&self) -> String {
        format!("{}floe/instance/", self.realm_prefix)
    }

    /// Connects (and loads the scripts) unless connected or backing off.
    pub(crate) async fn connect(&mut self) -> bool {
        if self.conn.is_some() {
            return true;
        }
        if Instant::now() < self.next_connect {
            return false;
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.opts.timeout))
            .set_response_timeout(Some(self.opts.timeout));
        let attempt = async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            for s in &self.scripts {
                s.load_async(&mut conn).await?;
            }
            Ok::<_, redis::RedisError>(conn)
        };
        match tokio::time::timeout(self.opts.timeout * 2, attempt).await {
            Ok(Ok(conn)) => {
                tracing::info!(redis = %redact(&self.opts.url), instance = %self.opts.instance, "connected to the fleet's Redis");
                self.conn = Some(conn);
                self.health.up.store(true, Ordering::Relaxed);
                self.backoff = Duration::from_millis(100);
                // Redis may have restarted empty, or removed this instance meanwhile.
                self.dirty = true;
                true
            }
            Ok(Err(e)) => {
                self.failed(&format!("connecting: {e}"));
                false
            }
            Err(_) => {
                self.failed("connecting: timed out");
                false
            }
        }
    }

    /// A failed connection or command: counted, logged, and retried after a backoff.
    fn failed(&mut self, what: &str) {
        self.health.errors.fetch_add(1, Ordering::Relaxed);
        self.health.up.store(false, Ordering::Relaxed);
        self.conn = None;
        self.dirty = true;
        tracing::warn!(redis = %redact(&self.opts.url), retry_in = ?self.backoff, "fleet Redis: {what}");
        self.next_connect = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Runs `pipe` with the response timeout; a failure disconnects.
    async fn query<T: redis::FromRedisValue>(
        &mut self,
        what: &str,
        pipe: &redis::Pipeline,
    ) -> Option<T> {
        let conn = self.conn.as_mut()?;
        match tokio::time::timeout(self.opts.timeout, pipe.query_async(conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.failed(&format!("{what}: {e}"));
                None
            }
            Err(_) => {
                self.failed(&format!("{what}: timed out"));
                None
            }
        }
    }

    /// EVALSHA of script `i` (loaded on connecting) with one key.
    fn evalsha<'p>(
        &self,
        pipe: &'p mut redis::Pipeline,
        i: usize,
        key: &str,
    ) -> &'p mut redis::Pipeline {
        let hash = self.scripts.get(i).map_or("", |s| s.get_hash());
        pipe.cmd("EVALSHA").arg(hash).arg(1).arg(key)
    }

    /// Handles a batch of operations from the cores in one pipeline.
    async fn handle(&mut self, batch: Vec<FleetRequest>) {
        if self.dirty || self.conn.is_none() {
            self.keep_lease().await;
        }
        let instances = self.instances_key();
        let prefix = self.instance_prefix();
        let lease_ms = self.opts.lease.as_millis() as u64;
        let (user_quota, total_quota) = self.quotas;
        let mut pipe = redis::pipe();
        for r in &batch {
            let (script, user) = match &r.op {
                FleetOp::Acquire { user, .. } => (0, user),
                FleetOp::Release { user } => (1, user),
            };
            self.evalsha(&mut pipe, script, &instances)
                .arg(&prefix)
                .arg(&self.opts.instance)
                .arg(user)
                .arg(user_quota)
                .arg(total_quota)
                .arg(lease_ms);
        }
        let results: Option<Vec<redis::Value>> = if self.conn.is_some() {
            self.query("quota", &pipe).await
        } else {
            None
        };
        for (i, r) in batch.into_iter().enumerate() {
            let answer = match (&r.op, &results) {
                (FleetOp::Release { user }, res) => {
                    self.count(user, -1);
                    self.dirty |= res.is_none();
                    continue;
                }
                (FleetOp::Acquire { .. }, Some(values)) => {
                    let (code, present) = values
                        .get(i)
                        .and_then(|v| redis::from_redis_value_ref::<(i64, i64)>(v).ok())
                        .unwrap_or((-1, 1));
                    self.dirty |= present == 0;
                    match code {
                        0 => FleetAnswer::Granted,
                        1 => FleetAnswer::UserFull,
                        2 => FleetAnswer::FleetFull,
                        _ => FleetAnswer::Unavailable,
                    }
                }
                (FleetOp::Acquire { .. }, None) if self.opts.fail_open => {
                    self.health.granted_open.fetch_add(1, Ordering::Relaxed);
                    self.dirty = true;
                    FleetAnswer::Granted
                }
                (FleetOp::Acquire { .. }, None) => FleetAnswer::Unavailable,
            };
            let FleetOp::Acquire { ticket, user } = r.op else {
                continue;
            };
            if answer == FleetAnswer::Granted {
                self.count(&user, 1);
            } else if answer == FleetAnswer::Unavailable {
                self.health.refused.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(w) = self.workers.get(r.worker) {
                let _ = w
                    .send(Inbound::Fleet {
                        ticket,
                        user,
                        answer,
                    })
                    .await;
            }
        }
    }

    fn count(&mut self, user: &str, delta: i64) {
        if delta > 0 {
            *self.local.entry(user.to_owned()).or_insert(0) += 1;
        } else if let Some(n) = self.local.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.local.remove(user);
            }
        }
    }

    /// Renews the lease, publishing this instance's counts when Redis may disagree.
    pub(crate) async fn keep_lease(&mut self) {
        if !self.connect().await {
            return;
        }
        let instances = self.instances_key();
        let lease_ms = self.opts.lease.as_millis() as u64;
        if !self.dirty {
            let mut pipe = redis::pipe();
            self.evalsha(&mut pipe, 2, &instances)
                .arg(&self.opts.instance)
                .arg(lease_ms);
            match self.query::<(i64,)>("lease", &pipe).await {
                // No lease any more: counted as dead, so publish the counts again.
                Some((0,)) => self.dirty = true,
                _ => return,
            }
        }
        let total: u64 = self.local.values().sum();
        let mut pipe = redis::pipe();
        let inv = self
            .evalsha(&mut pipe, 3, &instances)
            .arg(self.instance_prefix())
            .arg(&self.opts.instance)
            .arg(lease_ms)
            .arg(total);
        for (user, n) in &self.local {
            inv.arg(user).arg(*n);
        }
        if self
            .query::<(i64,)>("publishing counts", &pipe)
            .await
            .is_some()
        {
            self.dirty = false;
        }
    }

    /// Reads the users, REST secrets, revocations and quotas; tells the workers when
    /// they changed.
    pub(crate) async fn sync_users(&mut self) {
        if !self.connect().await {
            return;
        }
        let pattern = format!("{}user/*", self.realm_prefix);
        let mut names = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let mut pipe = redis::pipe();
            pipe.cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let page: Option<((u64, Vec<String>),)> = self.query("reading users", &pipe).await;
            let Some(((next, keys),)) = page else { return };
            names.extend(
                keys.into_iter()
                    .filter(|k| k.ends_with("/key") || k.ends_with("/key-sha256")),
            );
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let mut stored = StoredUsers::new(self.realm());
        let mut keys: HashMap<String, StoredKey> = HashMap::new();
        for chunk in names.chunks(MGET_CHUNK) {
            let mut pipe = redis::pipe();
            pipe.cmd("MGET").arg(chunk);
            let values: Option<(Vec<Option<String>>,)> = self.query("reading keys", &pipe).await;
            let Some((values,)) = values else { return };
            for (name, value) in chunk.iter().zip(values) {
                let Some(user) = StoredUsers::user_of_key(self.realm(), name) else {
                    continue;
                };
                let Some(hex) = value else { continue };
                let entry = keys.entry(user.to_owned()).or_default();
                if !entry.set_hex(hex.trim()) {
                    tracing::warn!(key = %name, "fleet Redis: not a 32- or 64-digit hex key; ignored");
                }
            }
        }
        for (user, key) in keys {
            if key.md5.is_some() || key.sha256.is_some() {
                stored.insert(&user, key);
            }
        }
        let p = &self.realm_prefix;
        let mut pipe = redis::pipe();
        pipe.cmd("SMEMBERS")
            .arg(format!("{p}secret"))
            .cmd("SMEMBERS")
            .arg(format!("{p}revoked"))
            .cmd("GET")
            .arg(format!("{p}user-quota"))
            .cmd("GET")
            .arg(format!("{p}total-quota"));
        let sets: Option<RealmSettings> = self.query("reading secrets", &pipe).await;
        let Some((secrets, revoked, user_quota, total_quota)) = sets else {
            return;
        };
        for s in &secrets {
            stored.add_rest_secret(s);
        }
        for r in &revoked {
            stored.revoke(r);
        }
        self.quotas = (
            parse_quota(user_quota.as_deref()).unwrap_or(self.defaults.0),
            parse_quota(total_quota.as_deref()).unwrap_or(self.defaults.1),
        );
        self.health.syncs.fetch_add(1, Ordering::Relaxed);
        self.health
            .users
            .store(stored.len() as u64, Ordering::Relaxed);
        if self.stored.as_deref() != Some(&stored) {
            tracing::info!(
                users = stored.len(),
                rest_secrets = stored.rest_secrets().len(),
                revoked = stored.revoked(),
                "fleet users read from Redis"
            );
            let stored = Arc::new(stored);
            for w in &self.workers {
                let _ = w.send(Inbound::StoredUsers(stored.clone())).await;
            }
            self.stored = Some(stored);
        }
    }

    fn realm(&self) -> &str {
        self.realm_prefix
            .strip_prefix("turn/realm/")
            .and_then(|r| r.strip_suffix('/'))
            .unwrap_or_default()
    }

    /// Leaves the fleet (a clean shutdown): this instance's places stop counting now.
    async fn leave(&mut self) {
        if self.conn.is_none() {
            return;
        }
        let mut pipe = redis::pipe();
        self.evalsha(&mut pipe, 4, &self.instances_key())
            .arg(self.instance_prefix())
            .arg(&self.opts.instance);
        let _: Option<(i64,)> = self.query("leaving", &pipe).await;
    }

    /// The task: operations from the cores, lease renewals and user reads, until every
    /// core has stopped.
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<FleetRequest>) {
        let mut lease = tokio::time::interval(self.opts.lease / 3);
        let mut poll = tokio::time::interval(self.opts.poll);
        lease.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                req = rx.recv() => {
                    let Some(req) = req else { break };
                    let mut batch = vec![req];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    self.handle(batch).await;
                }
                _ = lease.tick() => self.keep_lease().await,
                _ = poll.tick() => self.sync_users().await,
            }
        }
        self.leave().await;
    }
}

fn parse_quota(v: Option<&str>) -> Option<u64> {
    v?.trim().parse().ok()
}

/// `url` without its user and password (`redis://***@HOST:PORT/DB`), for logs and
/// `--print-config`.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_kept_out_of_logs() {
        assert_eq!(
            redact("redis://floe:hunter2@10.0.0.5:6379/0"),
            "redis://***@10.0.0.5:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn quotas_parse_or_fall_back() {
        assert_eq!(parse_quota(Some(" 12 ")), Some(12));
        assert_eq!(parse_quota(Some("many")), None);
        assert_eq!(parse_quota(None), None);
    }
}
