//! The command line: which cluster to join, and how.

use std::net::SocketAddr;
use std::time::Duration;

use noex::ClusterConfig;

/// How to use the program.
pub const USAGE: &str = "\
usage: noex-observer --seed NODE [--seed NODE ...] [--secret SECRET] [options]

Joins a noex cluster as a hidden node and shows it live.

  --seed NODE      a member to join through: name@host:port or host:port (at least one)
  --secret SECRET  the cluster secret (default: the NOEX_SECRET environment variable)
  --name NAME      this observer's node name (default: observer)
  --bind ADDRESS   the address to listen on (default: 127.0.0.1:0)
  --refresh MS     milliseconds between refreshes (default: 1000)
  --help           this text";

/// What the command line asks for. (Its `Debug` hides the secret, as `ClusterConfig`'s
/// does.)
#[derive(Clone, PartialEq, Eq)]
pub struct Options {
    /// The members to join through.
    pub seeds: Vec<String>,
    /// The cluster secret.
    pub secret: String,
    /// The observer's node name.
    pub name: String,
    /// Where the observer listens.
    pub bind: SocketAddr,
    /// The time between refreshes.
    pub refresh: Duration,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("seeds", &self.seeds)
            .field("secret", &"<hidden>")
            .field("name", &self.name)
            .field("bind", &self.bind)
            .field("refresh", &self.refresh)
            .finish()
    }
}

/// The outcome of [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Observe, with these options.
    Run(Options),
    /// Print [`USAGE`] and exit.
    Help,
}

/// Reads the arguments (without the program name); `env_secret` is `NOEX_SECRET`'s value.
///
/// ```
/// use noex_observer::cli::{parse, Parsed};
///
/// let args = ["--seed", "a@127.0.0.1:4370", "--secret", "s"].map(String::from);
/// let Parsed::Run(options) = parse(args.into_iter(), None).unwrap() else { panic!() };
/// assert_eq!(options.seeds, ["a@127.0.0.1:4370"]);
/// assert_eq!(options.name, "observer");
/// ```
pub fn parse(
    mut args: impl Iterator<Item = String>,
    env_secret: Option<String>,
) -> Result<Parsed, String> {
    let mut seeds = Vec::new();
    let (mut secret, mut name, mut bind, mut refresh) = (
        env_secret,
        "observer".to_owned(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Duration::from_millis(1000),
    );
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--seed" => seeds.push(value()?),
            "--secret" => secret = Some(value()?),
            "--name" => name = value()?,
            "--bind" => {
                let text = value()?;
                bind = text.parse().map_err(|_| format!("bad address {text:?}"))?;
            }
            "--refresh" => {
                let text = value()?;
                let ms: u64 = text
                    .parse()
                    .ok()
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| format!("bad refresh interval {text:?} (milliseconds)"))?;
                refresh = Duration::from_millis(ms);
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if seeds.is_empty() {
        return Err("at least one --seed is needed".to_owned());
    }
    let secret = secret.ok_or("a secret is needed: --secret, or NOEX_SECRET")?;
    Ok(Parsed::Run(Options {
        seeds,
        secret,
        name,
        bind,
        refresh,
    }))
}

impl Options {
    /// The observer node's configuration: a hidden node with these seeds and secret, on
    /// one thread that does not busy-wait (it has little to do).
    pub fn cluster_config(&self) -> ClusterConfig {
        let mut config = ClusterConfig::new(self.name.clone())
            .secret(&self.secret)
            .bind(self.bind)
            .hidden()
            .threads(1)
            .busy_wait(Duration::ZERO);
        for seed in &self.seeds {
            config = config.seed(seed.clone());
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> impl Iterator<Item = String> + '_ {
        text.split_whitespace().map(str::to_owned)
    }

    #[test]
    fn every_option_is_read() {
        let parsed = parse(
            args(
                "--seed a@h:1 --seed h:2 --secret s --name obs --bind 127.0.0.1:5000 --refresh 250",
            ),
            None,
        );
        assert_eq!(
            parsed,
            Ok(Parsed::Run(Options {
                seeds: vec!["a@h:1".into(), "h:2".into()],
                secret: "s".into(),
                name: "obs".into(),
                bind: "127.0.0.1:5000".parse().unwrap(),
                refresh: Duration::from_millis(250),
            }))
        );
    }

    #[test]
    fn the_secret_comes_from_the_environment_unless_given() {
        let Ok(Parsed::Run(options)) = parse(args("--seed h:1"), Some("env".into())) else {
            panic!("parses");
        };
        assert_eq!(options.secret, "env");
        assert!(parse(args("--seed h:1"), None).is_err());
        // Options printed (a log line, a failed assertion) do not show it.
        let printed = format!("{options:?}");
        assert!(
            !printed.contains("env") && printed.contains("<hidden>"),
            "{printed}"
        );
    }

    #[test]
    fn a_seed_is_required_and_mistakes_are_reported() {
        assert!(parse(args("--secret s"), None).is_err());
        assert!(parse(args("--seed"), None).is_err());
        assert!(parse(args("--seed h:1 --secret s --refresh 0"), None).is_err());
        assert!(parse(args("--seed h:1 --secret s --bogus"), None).is_err());
        assert_eq!(parse(args("--help"), None), Ok(Parsed::Help));
    }
}
