//! Configuration, read once at cold start. No other module reads the environment.

use std::fmt;
use std::time::Duration;

/// Default per-user quota when `FILESTORE_QUOTA_BYTES` is unset: 10 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// Default signups per source address per hour when `FILESTORE_SIGNUPS_PER_ADDRESS_PER_HOUR`
/// is unset.
pub const DEFAULT_SIGNUPS_PER_ADDRESS_PER_HOUR: u64 = 10;
/// `FILESTORE_MAX_OPEN_UPLOADS` when unset.
pub const DEFAULT_MAX_OPEN_UPLOADS: u64 = 100;

/// Default wait before the janitor re-queues the transfer of a file still unverified, when
/// `FILESTORE_TRANSFER_RETRY_SECS` is unset: 8 hours, past the 7.5 the transfer queue itself
/// retries a message (5 receives, 90 minutes apart) before it dead-letters it.
pub const DEFAULT_TRANSFER_RETRY_SECS: u64 = 8 * 3600;

/// Default longest wait between two re-queues of one transfer, when
/// `FILESTORE_TRANSFER_RETRY_MAX_SECS` is unset: a day.
pub const DEFAULT_TRANSFER_RETRY_MAX_SECS: u64 = 24 * 3600;

/// When the janitor re-queues the transfer of a file still unverified: `first` after the
/// file is created, then after twice as long each time, never longer than `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferRetry {
    /// `FILESTORE_TRANSFER_RETRY_SECS`.
    pub first: Duration,
    /// `FILESTORE_TRANSFER_RETRY_MAX_SECS`.
    pub max: Duration,
}

impl TransferRetry {
    /// How long to wait after the re-queue numbered `attempt` (0 for the first) before the
    /// next: `first` doubled `attempt + 1` times, at most `max`.
    pub fn after(&self, attempt: u32) -> Duration {
        let doubled = self
            .first
            .checked_mul(2u32.saturating_pow(attempt.saturating_add(1)))
            .unwrap_or(self.max);
        doubled.min(self.max)
    }
}

/// Default time an item stays in the trash before the janitor purges it when
/// `FILESTORE_TRASH_RETENTION_SECS` is unset: 30 days.
pub const DEFAULT_TRASH_RETENTION_SECS: u64 = 30 * 24 * 3600;

/// A value that must never appear in logs or debug output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The cold store: any S3-compatible endpoint (AWS S3 in another account, Aliyun OSS, MinIO),
/// with credentials and region of its own.
#[derive(Clone, Debug)]
pub struct ColdConfig {
    /// `FILESTORE_COLD_ENDPOINT_URL`; `None` means AWS S3 itself.
    pub endpoint_url: Option<String>,
    /// `FILESTORE_COLD_REGION` (default: `AWS_REGION`).
    pub region: String,
    /// `FILESTORE_COLD_BUCKET`.
    pub bucket: String,
    /// `FILESTORE_COLD_ACCESS_KEY_ID` and `FILESTORE_COLD_SECRET_ACCESS_KEY`; `None` means the
    /// function's own credentials.
    pub credentials: Option<(String, Secret)>,
    /// `FILESTORE_COLD_PATH_STYLE`: `bucket` in the path rather than the host name. Defaults to
    /// true with a custom endpoint (MinIO, emulators); set false for Aliyun OSS.
    pub path_style: bool,
}

/// Everything a function needs to know about its environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// `AWS_ENDPOINT_URL`: an emulator endpoint, or `None` for AWS itself.
    pub endpoint_url: Option<String>,
    /// `AWS_REGION`.
    pub region: String,
    /// `FILESTORE_TABLE`: the single DynamoDB table.
    pub table: String,
    /// `FILESTORE_HOT_BUCKET`: where uploads land.
    pub hot_bucket: String,
    /// `FILESTORE_JWT_SECRET`: HS256 key, at least 32 bytes. Deployed, the functions that
    /// sign or verify tokens get `FILESTORE_JWT_SECRET_ARN` instead, and
    /// [`crate::AppState::from_env`] reads the key from that Secrets Manager secret.
    pub jwt_secret: Secret,
    /// `FILESTORE_JWT_SECRET_ARN`: the secret holding the key, when not given itself.
    pub jwt_secret_arn: Option<String>,
    /// `FILESTORE_TOKEN_TTL_SECS` (default 3600).
    pub token_ttl: Duration,
    /// `FILESTORE_QUOTA_BYTES` (default 10 GiB).
    pub quota_bytes: u64,
    /// `FILESTORE_UPLOAD_TTL_SECS`: how long an unfinished upload lives (default 7 days).
    pub upload_ttl: Duration,
    /// `FILESTORE_PRESIGN_TTL_SECS`: lifetime of presigned URLs (default 900).
    pub presign_ttl: Duration,
    /// The cold store, present when `FILESTORE_COLD_BUCKET` is set.
    pub cold: Option<ColdConfig>,
    /// `FILESTORE_HOT_RETENTION_SECS`: how long the hot copy outlives a verified cold copy.
    /// Unset keeps it; `0` removes it as soon as the cold copy is verified.
    pub hot_retention: Option<Duration>,
    /// `FILESTORE_TRANSFER_QUEUE_URL`: the transfer queue, where a transfer too large for one
    /// run sends the message that continues it.
    pub transfer_queue_url: Option<String>,
    /// `FILESTORE_PUBLIC_URL`: where clients reach the API (`https://files.example.com`, no
    /// trailing `/`), the base of share links. `None` uses the domain API Gateway reports.
    pub public_url: Option<String>,
    /// `FILESTORE_SIGNUPS_PER_ADDRESS_PER_HOUR` (default 10): signups one source address may
    /// attempt in an hour.
    pub signups_per_address_per_hour: u64,
    /// `FILESTORE_METRICS_NAMESPACE` (default [`crate::metrics::NAMESPACE`]): the CloudWatch
    /// namespace of the functions' metrics. The template names it for the stack, so two
    /// stacks in one account and region keep their metrics, alarms and dashboards apart.
    pub metrics_namespace: Option<String>,
    /// `FILESTORE_MAX_OPEN_UPLOADS` (default 100): how many unfinished uploads one user may
    /// hold at once.
    pub max_open_uploads: u64,
    /// When the janitor re-queues transfers that have not verified their file (a cold store
    /// that was down until the queue gave up on their messages).
    pub transfer_retry: TransferRetry,
    /// `FILESTORE_TRASH_RETENTION_SECS` (default 30 days): how long a trashed item waits
    /// before the janitor purges it (its `purge_at`, fixed when it is trashed).
    pub trash_retention: Duration,
    /// `SSL_CERT_FILE`: one PEM bundle of the root certificates to trust instead of the
    /// compiled-in Mozilla roots (a cold store behind a private CA).
    pub ca_bundle: Option<String>,
}

/// A missing or malformed environment variable, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The key, refused under 32 bytes (`name` says where it came from).
///
/// # Errors
/// A key too short.
pub fn checked_key(key: String, name: &'static str) -> Result<String, ConfigError> {
    if key.len() < 32 {
        return Err(ConfigError::Invalid {
            name,
            reason: "must be at least 32 bytes".into(),
        });
    }
    Ok(key)
}

impl Config {
    /// Loads the configuration from the process environment.
    ///
    /// # Errors
    /// Names the first missing or malformed variable.
    /// The process's metrics take the configured namespace from here on.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok()).inspect(Self::name_metrics)
    }

    /// Writes the process's metrics under the configured namespace (a cold start's work:
    /// metrics are written outside any handler's state).
    fn name_metrics(&self) {
        if let Some(namespace) = &self.metrics_namespace {
            crate::metrics::set_namespace(namespace);
        }
    }

    /// Every variable [`Config::from_env`] reads, for documentation and deployment checks.
    pub const VARIABLES: &'static [&'static str] = &[
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "FILESTORE_TABLE",
        "FILESTORE_HOT_BUCKET",
        "FILESTORE_JWT_SECRET",
        "FILESTORE_JWT_SECRET_ARN",
        "FILESTORE_TOKEN_TTL_SECS",
        "FILESTORE_QUOTA_BYTES",
        "FILESTORE_UPLOAD_TTL_SECS",
        "FILESTORE_PRESIGN_TTL_SECS",
        "FILESTORE_COLD_ENDPOINT_URL",
        "FILESTORE_COLD_REGION",
        "FILESTORE_COLD_BUCKET",
        "FILESTORE_COLD_ACCESS_KEY_ID",
        "FILESTORE_COLD_SECRET_ACCESS_KEY",
        "FILESTORE_COLD_PATH_STYLE",
        "FILESTORE_HOT_RETENTION_SECS",
        "FILESTORE_TRANSFER_QUEUE_URL",
        "FILESTORE_PUBLIC_URL",
        "FILESTORE_SIGNUPS_PER_ADDRESS_PER_HOUR",
        "FILESTORE_MAX_OPEN_UPLOADS",
        "FILESTORE_TRANSFER_RETRY_SECS",
        "FILESTORE_TRANSFER_RETRY_MAX_SECS",
        "FILESTORE_TRASH_RETENTION_SECS",
        "FILESTORE_METRICS_NAMESPACE",
        "SSL_CERT_FILE",
    ];

    /// Loads the configuration for a function that signs and verifies no token (transfer,
    /// janitor): it is given no key, and holds a random one of its own, which signs nothing
    /// any other function accepts.
    ///
    /// # Errors
    /// Names the first missing or malformed variable.
    pub fn from_env_without_key() -> Result<Self, ConfigError> {
        Self::from_lookup_without_key(|name| std::env::var(name).ok()).inspect(Self::name_metrics)
    }

    /// [`Config::from_env_without_key`] through `lookup`.
    ///
    /// # Errors
    /// Names the first missing or malformed variable.
    pub fn from_lookup_without_key(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let own = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        Self::from_lookup(|name| match name {
            "FILESTORE_JWT_SECRET" => Some(own.clone()),
            "FILESTORE_JWT_SECRET_ARN" => None,
            _ => lookup(name),
        })
    }

    /// Loads the configuration through `lookup`, so tests need not touch the process environment.
    ///
    /// # Errors
    /// Names the first missing or malformed variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
                    name,
                    reason: format!("{v:?} is not a whole number"),
                }),
            }
        };
        let jwt_secret_arn = lookup("FILESTORE_JWT_SECRET_ARN").filter(|v| !v.trim().is_empty());
        let secret = match (required("FILESTORE_JWT_SECRET"), &jwt_secret_arn) {
            (Ok(secret), _) => checked_key(secret, "FILESTORE_JWT_SECRET")?,
            // Read from the secret once the SDK is configured.
            (Err(_), Some(_)) => String::new(),
            (Err(missing), None) => return Err(missing),
        };
        let positive = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match number(name, default)? {
                0 => Err(ConfigError::Invalid {
                    name,
                    reason: "must be greater than zero".into(),
                }),
                n => Ok(n),
            }
        };
        let optional = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let region = optional("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
        let cold = match optional("FILESTORE_COLD_BUCKET") {
            None => None,
            Some(bucket) => Some(ColdConfig {
                path_style: match optional("FILESTORE_COLD_PATH_STYLE").as_deref() {
                    None => optional("FILESTORE_COLD_ENDPOINT_URL").is_some(),
                    Some("true") | Some("1") => true,
                    Some("false") | Some("0") => false,
                    Some(other) => {
                        return Err(ConfigError::Invalid {
                            name: "FILESTORE_COLD_PATH_STYLE",
                            reason: format!("{other:?} is not true or false"),
                        });
                    }
                },
                endpoint_url: optional("FILESTORE_COLD_ENDPOINT_URL"),
                region: optional("FILESTORE_COLD_REGION").unwrap_or_else(|| region.clone()),
                bucket,
                credentials: match (
                    optional("FILESTORE_COLD_ACCESS_KEY_ID"),
                    optional("FILESTORE_COLD_SECRET_ACCESS_KEY"),
                ) {
                    (Some(id), Some(secret)) => Some((id, Secret::new(secret))),
                    (None, None) => None,
                    _ => {
                        return Err(ConfigError::Invalid {
                            name: "FILESTORE_COLD_ACCESS_KEY_ID",
                            reason: "set both FILESTORE_COLD_ACCESS_KEY_ID and FILESTORE_COLD_SECRET_ACCESS_KEY, or neither".into(),
                        });
                    }
                },
            }),
        };
        let hot_retention = match optional("FILESTORE_HOT_RETENTION_SECS") {
            None => None,
            Some(_) => Some(Duration::from_secs(number(
                "FILESTORE_HOT_RETENTION_SECS",
                0,
            )?)),
        };
        let transfer_retry = TransferRetry {
            first: Duration::from_secs(positive(
                "FILESTORE_TRANSFER_RETRY_SECS",
                DEFAULT_TRANSFER_RETRY_SECS,
            )?),
            max: Duration::from_secs(positive(
                "FILESTORE_TRANSFER_RETRY_MAX_SECS",
                DEFAULT_TRANSFER_RETRY_MAX_SECS,
            )?),
        };
        if transfer_retry.max < transfer_retry.first {
            return Err(ConfigError::Invalid {
                name: "FILESTORE_TRANSFER_RETRY_MAX_SECS",
                reason: "must not be less than FILESTORE_TRANSFER_RETRY_SECS".into(),
            });
        }
        Ok(Self {
            endpoint_url: optional("AWS_ENDPOINT_URL"),
            ca_bundle: optional("SSL_CERT_FILE"),
            region,
            table: required("FILESTORE_TABLE")?,
            hot_bucket: required("FILESTORE_HOT_BUCKET")?,
            jwt_secret: Secret::new(secret),
            jwt_secret_arn,
            token_ttl: Duration::from_secs(positive("FILESTORE_TOKEN_TTL_SECS", 3600)?),
            quota_bytes: number("FILESTORE_QUOTA_BYTES", DEFAULT_QUOTA_BYTES)?,
            upload_ttl: Duration::from_secs(positive("FILESTORE_UPLOAD_TTL_SECS", 7 * 24 * 3600)?),
            presign_ttl: Duration::from_secs(positive("FILESTORE_PRESIGN_TTL_SECS", 900)?),
            cold,
            hot_retention,
            transfer_queue_url: optional("FILESTORE_TRANSFER_QUEUE_URL"),
            public_url: optional("FILESTORE_PUBLIC_URL")
                .map(|url| public_url(&url))
                .transpose()?,
            signups_per_address_per_hour: positive(
                "FILESTORE_SIGNUPS_PER_ADDRESS_PER_HOUR",
                DEFAULT_SIGNUPS_PER_ADDRESS_PER_HOUR,
            )?,
            max_open_uploads: positive("FILESTORE_MAX_OPEN_UPLOADS", DEFAULT_MAX_OPEN_UPLOADS)?,
            metrics_namespace: lookup("FILESTORE_METRICS_NAMESPACE")
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            transfer_retry,
            trash_retention: Duration::from_secs(number(
                "FILESTORE_TRASH_RETENTION_SECS",
                DEFAULT_TRASH_RETENTION_SECS,
            )?),
        })
    }
}

/// `FILESTORE_PUBLIC_URL` as links are built from it: an `http` or `https` URL with a host,
/// maybe a path (a stage), no query or fragment, without its trailing `/`.
fn public_url(value: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: "FILESTORE_PUBLIC_URL",
        reason: format!("{value:?} {reason}"),
    };
    let uri: http::Uri = value.trim().parse().map_err(|_| invalid("is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(invalid("must start with https:// or http://"));
    }
    match uri.authority() {
        Some(a) if !a.host().is_empty() && !a.as_str().contains('@') => {}
        _ => return Err(invalid("must name a host (and no user info)")),
    }
    if uri.query().is_some() || value.contains('#') {
        return Err(invalid("must not have a query or a fragment"));
    }
    Ok(value.trim().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("FILESTORE_TABLE", "t"),
        ("FILESTORE_HOT_BUCKET", "b"),
        ("FILESTORE_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
    ];

    #[test]
    fn defaults_apply_when_optional_variables_are_unset() {
        let c = Config::from_lookup(env(BASE)).unwrap();
        assert_eq!(c.quota_bytes, DEFAULT_QUOTA_BYTES);
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.endpoint_url, None);
        assert_eq!(c.trash_retention, Duration::from_secs(2_592_000));
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn the_cold_store_has_its_own_endpoint_and_credentials() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("FILESTORE_COLD_BUCKET", "cold"),
            (
                "FILESTORE_COLD_ENDPOINT_URL",
                "https://oss-cn-hangzhou.aliyuncs.com",
            ),
            ("FILESTORE_COLD_REGION", "cn-hangzhou"),
            ("FILESTORE_COLD_ACCESS_KEY_ID", "id"),
            ("FILESTORE_COLD_SECRET_ACCESS_KEY", "very secret"),
            ("FILESTORE_HOT_RETENTION_SECS", "0"),
        ]);
        let c = Config::from_lookup(env(&pairs)).unwrap();
        let cold = c.cold.as_ref().unwrap();
        assert_eq!(cold.region, "cn-hangzhou");
        assert_eq!(cold.credentials.as_ref().unwrap().0, "id");
        assert_eq!(c.hot_retention, Some(Duration::ZERO));
        assert!(!format!("{c:?}").contains("very secret"));
        assert!(Config::from_lookup(env(BASE)).unwrap().cold.is_none());
        pairs.retain(|(k, _)| *k != "FILESTORE_COLD_SECRET_ACCESS_KEY");
        assert!(Config::from_lookup(env(&pairs)).is_err());
    }

    #[test]
    fn the_public_url_is_an_http_base_without_its_trailing_slash() {
        let with = |url: &str| {
            let mut pairs = BASE.to_vec();
            pairs.push(("FILESTORE_PUBLIC_URL", url));
            Config::from_lookup(env(&pairs)).map(|c| c.public_url)
        };
        assert_eq!(Config::from_lookup(env(BASE)).unwrap().public_url, None);
        assert_eq!(
            with("https://files.example.com/").unwrap().as_deref(),
            Some("https://files.example.com")
        );
        assert_eq!(
            with("http://127.0.0.1:8080").unwrap().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            with("https://x.execute-api.us-east-1.amazonaws.com/prod/")
                .unwrap()
                .as_deref(),
            Some("https://x.execute-api.us-east-1.amazonaws.com/prod")
        );
        for bad in [
            "files.example.com",
            "javascript://evil.example",
            "ftp://files.example.com",
            "https://user@files.example.com",
            "https://files.example.com/?a=b",
            "https://files.example.com/#x",
            "https://",
        ] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains("FILESTORE_PUBLIC_URL"), "{bad}: {err}");
        }
    }

    #[test]
    fn signups_per_address_default_to_ten_and_must_be_positive() {
        let c = Config::from_lookup(env(BASE)).unwrap();
        assert_eq!(c.signups_per_address_per_hour, 10);
        assert_eq!(c.max_open_uploads, 100);
        let mut pairs = BASE.to_vec();
        pairs.push(("FILESTORE_SIGNUPS_PER_ADDRESS_PER_HOUR", "0"));
        assert!(Config::from_lookup(env(&pairs)).is_err());
    }

    #[test]
    fn transfer_retries_double_up_to_their_longest_wait() {
        let c = Config::from_lookup(env(BASE)).unwrap();
        assert_eq!(
            c.transfer_retry.first,
            Duration::from_secs(DEFAULT_TRANSFER_RETRY_SECS)
        );
        let retry = TransferRetry {
            first: Duration::from_secs(60),
            max: Duration::from_secs(600),
        };
        let waits: Vec<u64> = (0..6).map(|n| retry.after(n).as_secs()).collect();
        assert_eq!(waits, [120, 240, 480, 600, 600, 600]);
        assert_eq!(retry.after(u32::MAX), retry.max);
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("FILESTORE_TRANSFER_RETRY_SECS", "600"),
            ("FILESTORE_TRANSFER_RETRY_MAX_SECS", "60"),
        ]);
        let err = Config::from_lookup(env(&pairs)).unwrap_err();
        assert!(
            err.to_string()
                .contains("FILESTORE_TRANSFER_RETRY_MAX_SECS")
        );
    }

    #[test]
    fn missing_and_malformed_variables_are_named() {
        let err = Config::from_lookup(env(&BASE[1..])).unwrap_err();
        assert!(err.to_string().contains("FILESTORE_TABLE"));
        let mut pairs = BASE.to_vec();
        pairs.push(("FILESTORE_QUOTA_BYTES", "lots"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err();
        assert!(err.to_string().contains("FILESTORE_QUOTA_BYTES"));
        let err = Config::from_lookup(env(&[
            ("FILESTORE_TABLE", "t"),
            ("FILESTORE_HOT_BUCKET", "b"),
            ("FILESTORE_JWT_SECRET", "short"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("32 bytes"));
    }
}
