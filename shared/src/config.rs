//! Layered configuration: built-in defaults, then an optional file, then
//! environment variables.
//!
//! Every service describes its settings as a struct whose `Default` holds the
//! defaults (`#[serde(default)]`). [`load`] overlays a TOML/YAML/JSON file
//! (chosen by its extension) and then the `CHAT_*` environment variables, with
//! `__` between nested keys: `CHAT_AUTH__MODE=jwt` sets `auth.mode`.

use std::path::Path;

use serde::de::DeserializeOwned;

/// The prefix of every environment variable read as configuration.
pub const ENV_PREFIX: &str = "CHAT";

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// Loads `T` from defaults, the optional `file`, and the environment.
///
/// `list_keys` names the keys whose environment value is a comma-separated
/// list (for example `auth.allowed_origins`).
///
/// # Errors
/// A missing or malformed file, or a value of the wrong type.
pub fn load<T: DeserializeOwned>(file: Option<&Path>, list_keys: &[&str]) -> Result<T, ConfigError> {
    load_from(file, list_keys, std::env::vars())
}

/// [`load`] with an explicit set of environment variables (for tests).
///
/// # Errors
/// As [`load`].
pub fn load_from<T, I>(file: Option<&Path>, list_keys: &[&str], env: I) -> Result<T, ConfigError>
where
    T: DeserializeOwned,
    I: IntoIterator<Item = (String, String)>,
{
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    let vars: config::Map<String, String> =
        env.into_iter().filter(|(k, v)| k.starts_with(ENV_PREFIX) && !v.is_empty()).collect();
    let mut env_source = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true)
        .source(Some(vars));
    if !list_keys.is_empty() {
        env_source = env_source.list_separator(",");
        for key in list_keys {
            env_source = env_source.with_list_parse_key(key);
        }
    }
    let built = builder.add_source(env_source).build()?;
    Ok(built.try_deserialize()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default)]
    #[serde(default)]
    struct Nested {
        mode: String,
        origins: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(default)]
    struct Sample {
        listen: String,
        node_id: String,
        size: u32,
        auth: Nested,
    }

    impl Default for Sample {
        fn default() -> Self {
            Sample { listen: "127.0.0.1:8080".into(), node_id: "n".into(), size: 7, auth: Nested::default() }
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_apply_without_sources() {
        let s: Sample = load_from(None, &[], env(&[])).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.size, 7);
    }

    #[test]
    fn environment_overrides_with_double_underscore() {
        let s: Sample = load_from(
            None,
            &["auth.origins"],
            env(&[
                ("CHAT_LISTEN", "0.0.0.0:9000"),
                ("CHAT_NODE_ID", "gw-7"),
                ("CHAT_SIZE", "12"),
                ("CHAT_AUTH__MODE", "jwt"),
                ("CHAT_AUTH__ORIGINS", "https://a.example,https://b.example"),
                ("OTHER_SIZE", "99"),
            ]),
        )
        .unwrap();
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.node_id, "gw-7");
        assert_eq!(s.size, 12);
        assert_eq!(s.auth.mode, "jwt");
        assert_eq!(s.auth.origins, vec!["https://a.example", "https://b.example"]);
    }

    #[test]
    fn file_then_environment() {
        let dir = std::env::temp_dir().join(format!("chat-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "size = 3\n[auth]\nmode = \"anonymous\"\n").unwrap();
        let s: Sample = load_from(Some(&path), &[], env(&[("CHAT_AUTH__MODE", "jwt")])).unwrap();
        assert_eq!(s.size, 3);
        assert_eq!(s.auth.mode, "jwt");
        let bad: Result<Sample, _> = load_from(Some(&dir.join("missing.toml")), &[], env(&[]));
        assert!(bad.is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
