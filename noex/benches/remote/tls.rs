//! What TLS costs (with `--features tls`): the call round trip and cast throughput between
//! two nodes whose connection runs over TLS 1.3 (certificates made at run time), next to
//! the same measurements over plain TCP, alternating round by round.

use noex::{ClusterConfig, Node, ServerRef, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use super::{
    block_on_limit, median, micros, noex_calls, noex_casts, percentile, Bench, Echo, Row, Sink,
    CAST_ROUNDS, THREADS,
};

/// Two nodes' TLS settings, issued by one authority made for the run.
fn tls_configs() -> (TlsConfig, TlsConfig) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("CA key");
    let ca = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
    let node = || {
        let key = KeyPair::generate().expect("node key");
        let certificate = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .and_then(|params| params.signed_by(&key, &ca))
            .expect("node certificate");
        TlsConfig::from_pem(
            ca.pem().as_bytes(),
            certificate.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
        )
        .expect("TLS settings")
    };
    (node(), node())
}

fn start_tls_nodes() -> (Node, Node) {
    let (tls_a, tls_b) = tls_configs();
    let config = |name: &str, tls: TlsConfig| {
        ClusterConfig::new(name)
            .secret("noex remote bench")
            .threads(THREADS)
            .tls(tls)
    };
    block_on_limit("starting the TLS nodes", async {
        let a = Node::start(config("bench-tls-a", tls_a))
            .await
            .expect("node a starts");
        let seed = a.local_node_id().expect("clustered").to_string();
        let b = Node::start(config("bench-tls-b", tls_b).seed(seed))
            .await
            .expect("node b starts");
        while a.connected_nodes().len() != 1 || b.connected_nodes().len() != 1 {
            smol::Timer::after(std::time::Duration::from_millis(5)).await;
        }
        (a, b)
    })
}

impl Bench {
    /// Rows of TLS figures against plain TCP's (in the "bare baseline" column).
    pub(super) fn tls(&mut self) {
        let (a, b) = start_tls_nodes();
        let echo = block_on_limit("spawning echo", b.spawn::<Echo>(())).expect("echo starts");
        let sink = block_on_limit("spawning sink", b.spawn::<Sink>(())).expect("sink starts");
        let echo: ServerRef<Echo> = a.server_ref(echo.pid()).expect("remote echo");
        let sink: ServerRef<Sink> = a.server_ref(sink.pid()).expect("remote sink");
        let plan = &self.plan;

        let mut tls_rtt = noex_calls(&a, &echo, plan.call_warmup, plan.call_samples);
        let mut plain_rtt = noex_calls(&self.a, &self.echo, plan.call_warmup, plan.call_samples);
        tls_rtt.sort_unstable();
        plain_rtt.sort_unstable();
        let (t, p) = (percentile(&tls_rtt, 50.0), percentile(&plain_rtt, 50.0));
        self.rows.push(Row {
            what: "TLS: call round trip p50 (µs), against plain TCP".to_owned(),
            noex: micros(t),
            bare: micros(p),
            ratio: format!("{:.2}×", t as f64 / p as f64),
            target: "—".to_owned(),
            met: "",
        });
        for (size, count, label) in [
            (16, plan.small_casts, "16 B"),
            (1024, plan.large_casts, "1 KiB"),
        ] {
            let (mut tls_rates, mut plain_rates) = (Vec::new(), Vec::new());
            for _ in 0..CAST_ROUNDS {
                let elapsed = noex_casts(&a, &sink, count, size);
                tls_rates.push(count as f64 / elapsed.as_secs_f64());
                let elapsed = noex_casts(&self.a, &self.sink, count, size);
                plain_rates.push(count as f64 / elapsed.as_secs_f64());
            }
            let (t, p) = (median(tls_rates), median(plain_rates));
            self.rows.push(Row {
                what: format!("TLS: cast {label} payload, msg/s, against plain TCP"),
                noex: format!("{t:.0}"),
                bare: format!("{p:.0}"),
                ratio: format!("{:.2}×", t / p),
                target: "—".to_owned(),
                met: "",
            });
        }
        self.notes.push(
            "TLS rows: the same measurements between two nodes connected over TLS 1.3 \
             (ring, AES-GCM or ChaCha20 as negotiated), against plain TCP nodes measured \
             alternately; the \"bare baseline\" column holds the plain TCP figure"
                .to_owned(),
        );
        a.shutdown();
        b.shutdown();
    }
}
