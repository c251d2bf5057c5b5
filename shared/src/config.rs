//! Layered configuration for every service of the cluster, from one
//! environment: built-in defaults, then an optional file (TOML, YAML or JSON
//! by extension), then `CHAT_*` environment variables with `__` between
//! nested keys (`CHAT_GATEWAY__LIMITS__MAX_FRAME_BYTES` sets
//! `gateway.limits.max_frame_bytes`).
//!
//! # Layout
//!
//! The top of the settings holds two kinds of sections:
//! - the cluster-wide sections of [`Cluster`] (`redis`, `auth`, `history`,
//!   `dm`, `presence`, `log`): every service reads them under the same keys,
//!   so the values that must agree are given once;
//! - one section per service ([`Service::section`]: `gateway`,
//!   `presence_service`, `history_service`) with what only that service reads.
//!
//! So one environment (one `.env`, one ConfigMap) can hold the whole
//! cluster's settings. A service refuses, with a message naming the key, an
//! unknown key inside a cluster-wide section or inside its own section (a
//! misspelling); it passes over the other services' sections, and it
//! ignores, listing them in [`Loaded::ignored`] for a warning, top-level
//! keys that no service reads (`CHAT_IMAGE`, `CHAT_DEV_SECRET` and other
//! variables of a compose file or a shell).

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::settings::Cluster;

/// The prefix of every environment variable read as configuration.
pub const ENV_PREFIX: &str = "CHAT";

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &["auth.allowed_origins", "gateway.trusted_proxies", "gateway.files.allowed_types"];

/// Top-level keys of earlier versions and where their settings went: a
/// leftover is refused rather than silently ignored.
const MOVED: &[(&str, &str)] = &[
    ("listen", "each service's own section: gateway.listen, presence_service.listen, history_service.listen"),
    ("node_id", "gateway.node_id"),
    ("engine", "gateway.engine"),
    ("workers", "gateway.workers"),
    ("admin", "gateway.admin"),
    ("limits", "gateway.limits"),
    ("heartbeat", "gateway.heartbeat"),
    ("shutdown", "gateway.shutdown"),
    ("web", "gateway.web"),
    ("replica_id", "presence_service.replica_id"),
];

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// The services of the cluster, each with a section of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Gateway,
    Presence,
    History,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Gateway, Service::Presence, Service::History];

    /// The top-level key of the service's own settings.
    pub const fn section(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Presence => "presence_service",
            Service::History => "history_service",
        }
    }
}

/// One service's settings.
#[derive(Debug, Clone, Default)]
pub struct Loaded<S> {
    /// The cluster-wide sections.
    pub cluster: Cluster,
    /// The service's own section.
    pub own: S,
    /// Top-level keys that no service reads, as `CHAT_*` names; the service
    /// logs them once it has a logger.
    pub ignored: Vec<String>,
}

/// Loads `service`'s settings from the defaults, the optional `file` and
/// the process environment. The cluster-wide sections are validated.
///
/// # Errors
/// A missing or malformed file, a value of the wrong type, an unknown key in
/// a cluster-wide section or in the service's own section, a key of an
/// earlier version, or an invalid cluster-wide value.
pub fn load<S: DeserializeOwned + Default>(service: Service, file: Option<&Path>) -> Result<Loaded<S>, ConfigError> {
    load_from(service, file, std::env::vars())
}

/// [`load`] with an explicit set of environment variables (for tests).
///
/// # Errors
/// As [`load`].
pub fn load_from<S, I>(service: Service, file: Option<&Path>, env: I) -> Result<Loaded<S>, ConfigError>
where
    S: DeserializeOwned + Default,
    I: IntoIterator<Item = (String, String)>,
{
    let file = file.map(|path| config::File::from(path).required(true));
    from_tree(service, read_tree(file, env)?)
}

/// [`load_from`] with the file's TOML text itself (the `config` fuzz target).
///
/// # Errors
/// As [`load`].
pub fn load_toml<S, I>(service: Service, toml: &str, env: I) -> Result<Loaded<S>, ConfigError>
where
    S: DeserializeOwned + Default,
    I: IntoIterator<Item = (String, String)>,
{
    from_tree(service, read_tree(Some(config::File::from_str(toml, config::FileFormat::Toml)), env)?)
}

fn from_tree<S: DeserializeOwned + Default>(
    service: Service,
    mut tree: config::Map<String, config::Value>,
) -> Result<Loaded<S>, ConfigError> {
    let mut ignored = Vec::new();
    for key in tree.keys() {
        if let Some((_, moved_to)) = MOVED.iter().find(|(old, _)| old == key) {
            return Err(ConfigError::Invalid(format!(
                "`{key}` ({}) is no longer read: it is now {moved_to}",
                env_name(key)
            )));
        }
        let known = Cluster::SECTIONS.contains(&key.as_str()) || Service::ALL.iter().any(|s| s.section() == key);
        if !known {
            ignored.push(env_name(key));
        }
    }
    ignored.sort();
    let cluster = Cluster {
        redis: section(&mut tree, "redis")?,
        auth: section(&mut tree, "auth")?,
        history: section(&mut tree, "history")?,
        dm: section(&mut tree, "dm")?,
        presence: section(&mut tree, "presence")?,
        log: section(&mut tree, "log")?,
    };
    cluster.validate()?;
    let own = section(&mut tree, service.section())?;
    Ok(Loaded { cluster, own, ignored })
}

/// The whole tree, from the file and the `CHAT_*` variables (empty ones
/// count as unset).
fn read_tree<F, I>(file: Option<F>, env: I) -> Result<config::Map<String, config::Value>, ConfigError>
where
    F: config::Source + Send + Sync + 'static,
    I: IntoIterator<Item = (String, String)>,
{
    let mut builder = config::Config::builder();
    if let Some(file) = file {
        builder = builder.add_source(file);
    }
    let prefix = format!("{ENV_PREFIX}_");
    let vars: config::Map<String, String> =
        env.into_iter().filter(|(k, v)| k.starts_with(&prefix) && !v.is_empty()).collect();
    // The config crate reads `[N]` and `.` in a key as a path: `CHAT_X[99999999999999]`
    // would make it allocate an array that long and abort (found by the `config` fuzz target).
    if let Some(bad) = vars.keys().find(|k| !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')) {
        return Err(ConfigError::Invalid(format!(
            "environment variable `{bad}`: a setting's name holds only letters, digits and `_`"
        )));
    }
    let mut env_source = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .source(Some(vars));
    for key in LIST_KEYS {
        env_source = env_source.with_list_parse_key(key);
    }
    Ok(builder.add_source(env_source).build()?.try_deserialize()?)
}

/// Takes `name` out of the tree as a `T` (its defaults when absent); an error
/// names the section.
fn section<T: DeserializeOwned + Default>(
    tree: &mut config::Map<String, config::Value>,
    name: &str,
) -> Result<T, ConfigError> {
    match tree.remove(name) {
        None => Ok(T::default()),
        Some(value) => value.try_deserialize().map_err(|err| ConfigError::Invalid(format!("{name}: {err}"))),
    }
}

/// Logs, once a logger is installed, the keys [`Loaded::ignored`] listed.
pub fn warn_ignored(ignored: &[String]) {
    if !ignored.is_empty() {
        tracing::warn!(keys = ?ignored, "settings that no service reads were ignored");
    }
}

/// The environment variable of a top-level key.
fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}_{}", key.to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Own {
        listen: String,
        size: u32,
        nested: Nested,
    }

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Nested {
        flag: bool,
    }

    impl Default for Own {
        fn default() -> Self {
            Own { listen: "127.0.0.1:8080".into(), size: 7, nested: Nested::default() }
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn load_env(service: Service, pairs: &[(&str, &str)]) -> Result<Loaded<Own>, ConfigError> {
        load_from(service, None, env(pairs))
    }

    #[test]
    fn defaults_apply_without_sources() {
        let loaded = load_env(Service::Gateway, &[]).unwrap();
        assert_eq!(loaded.own, Own::default());
        assert_eq!(loaded.cluster.history.size, 1_000);
        assert!(loaded.ignored.is_empty());
    }

    #[test]
    fn environment_overrides_with_double_underscore() {
        let loaded = load_env(
            Service::Gateway,
            &[
                ("CHAT_GATEWAY__LISTEN", "0.0.0.0:9000"),
                ("CHAT_GATEWAY__SIZE", "12"),
                ("CHAT_GATEWAY__NESTED__FLAG", "true"),
                ("CHAT_AUTH__MODE", "jwt"),
                ("CHAT_AUTH__HS256_SECRET", "s"),
                ("CHAT_AUTH__ALLOWED_ORIGINS", "https://a.example,https://b.example"),
                ("CHAT_HISTORY__SIZE", "10"),
                ("CHAT_EMPTY", ""),
                ("OTHER_SIZE", "99"),
            ],
        )
        .unwrap();
        assert_eq!(loaded.own, Own { listen: "0.0.0.0:9000".into(), size: 12, nested: Nested { flag: true } });
        assert_eq!(loaded.cluster.auth.allowed_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(loaded.cluster.history.size, 10);
        assert!(loaded.ignored.is_empty(), "{:?}", loaded.ignored);
    }

    #[test]
    fn one_environment_serves_every_service() {
        let all = [
            ("CHAT_GATEWAY__LISTEN", "0.0.0.0:8080"),
            ("CHAT_PRESENCE_SERVICE__LISTEN", "0.0.0.0:8090"),
            ("CHAT_PRESENCE_SERVICE__SOMETHING_ELSE", "x"),
            ("CHAT_HISTORY_SERVICE__LISTEN", "0.0.0.0:8091"),
            ("CHAT_REDIS__URL", "redis://redis:6379"),
            ("CHAT_DEV_SECRET", "compose's own"),
            ("CHAT_IMAGE", "chat:latest"),
        ];
        let gateway = load_env(Service::Gateway, &all).unwrap();
        assert_eq!(gateway.own.listen, "0.0.0.0:8080");
        assert_eq!(gateway.cluster.redis.url, "redis://redis:6379");
        assert_eq!(gateway.ignored, ["CHAT_DEV_SECRET", "CHAT_IMAGE"]);
        // Another service's section holds keys this `Own` does not have: passed over.
        let history = load_env(Service::History, &all).unwrap();
        assert_eq!(history.own.listen, "0.0.0.0:8091");
        // Its own section is strict.
        let err = load_env(Service::Presence, &all).unwrap_err().to_string();
        assert!(err.contains("presence_service") && err.contains("something_else"), "{err}");
    }

    #[test]
    fn misspelt_keys_are_refused_by_name() {
        for (key, value, names) in [
            ("CHAT_GATEWAY__LISTN", "x", "listn"),
            ("CHAT_GATEWAY__NESTED__FLAGG", "true", "flagg"),
            ("CHAT_REDIS__URLL", "redis://x", "urll"),
            ("CHAT_GATEWAY__SIZE", "lots", "gateway"),
            ("CHAT_HISTORY__SIZE", "0", "history.size"),
        ] {
            let err = load_env(Service::Gateway, &[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(names), "{key}: {err}");
        }
    }

    #[test]
    fn a_variable_name_with_a_path_in_it_is_refused_not_allocated() {
        // An array index: the config crate would allocate 14 trillion entries.
        for key in ["CHAT_GATEWAY[22422222222222]", "CHAT_GATEWAY.LISTEN", "CHAT_GATEWAY__LIMITS__MAX TEXT"] {
            let err = load_env(Service::Gateway, &[(key, "1")]).unwrap_err().to_string();
            assert!(err.contains("letters, digits and `_`") && err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn replica_waits_need_a_timeout() {
        let loaded = load_env(Service::Gateway, &[("CHAT_REDIS__WAIT_REPLICAS", "1")]).unwrap();
        assert_eq!((loaded.cluster.redis.wait_replicas, loaded.cluster.redis.wait_timeout_ms), (1, 500));
        let pairs = [("CHAT_REDIS__WAIT_REPLICAS", "1"), ("CHAT_REDIS__WAIT_TIMEOUT_MS", "0")];
        let err = load_env(Service::Gateway, &pairs).unwrap_err().to_string();
        assert!(err.contains("redis.wait_timeout_ms"), "{err}");
    }

    #[test]
    fn keys_of_earlier_versions_say_where_they_went() {
        let err = load_env(Service::Gateway, &[("CHAT_LIMITS__MAX_FRAME_BYTES", "1")]).unwrap_err().to_string();
        assert!(err.contains("CHAT_LIMITS") && err.contains("gateway.limits"), "{err}");
        let err = load_env(Service::History, &[("CHAT_LISTEN", "127.0.0.1:1")]).unwrap_err().to_string();
        assert!(err.contains("history_service.listen"), "{err}");
    }

    #[test]
    fn file_then_environment() {
        let dir = std::env::temp_dir().join(format!("chat-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "[gateway]\nsize = 3\n[auth]\nmode = \"anonymous\"\n").unwrap();
        let loaded: Loaded<Own> =
            load_from(Service::Gateway, Some(&path), env(&[("CHAT_GATEWAY__LISTEN", "127.0.0.1:1")])).unwrap();
        assert_eq!((loaded.own.size, loaded.own.listen.as_str()), (3, "127.0.0.1:1"));
        let missing: Result<Loaded<Own>, _> = load_from(Service::Gateway, Some(&dir.join("missing.toml")), env(&[]));
        assert!(missing.is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
