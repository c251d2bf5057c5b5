//! The configuration loader: a TOML file and `CHAT_*` environment variables
//! (the part of the input after the first NUL byte, one `NAME=VALUE` per
//! line), loaded and validated as the gateway loads them at start, then the
//! authenticator built from them (secrets; not key files, which are the
//! operator's to name).
//!
//! Holds: no panic; settings that load also validate.
#![no_main]

use gateway::auth::Authenticator;
use gateway::Settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (toml, env) = text.split_once('\0').unwrap_or((text, ""));
    let env: Vec<(String, String)> =
        env.lines().filter_map(|line| line.split_once('=')).map(|(k, v)| (format!("CHAT_{k}"), v.to_owned())).collect();
    if let Ok(settings) = Settings::from_toml(toml, env) {
        settings.validate().expect("loaded settings are valid");
        let _ = settings.gateway.trusted_proxy_ranges();
        // A key file is the operator's to name; reading one (say /dev/zero)
        // is not the loader's business.
        if settings.cluster.auth.rs256_public_key_path.is_none() {
            let _ = Authenticator::new(&settings.cluster.auth);
        }
    }
});
