//! The deployment files under `docs/deploy`: the Helm chart's topics against the topic registry, the values
//! files against the keys the templates read, and the chart rendered by Helm itself.
//!
//! Rendering uses the real Helm template engine: the `helm` CLI when it is on PATH (`helm template` and
//! `helm lint`), otherwise Helm's Go SDK through the `helm-python-sdk` package from PyPI
//! (`pip install helm-python-sdk`, import name `helm_python`), which renders offline without a cluster. With
//! neither, the rendering test says so and passes, except under `CI=true`, where it fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::{Mapping, Value};
use todo_events::{Profile, TOPICS, TopicSpec};

const VALUES_FILES: [&str; 4] = [
    "values.yaml",
    "values-local.yaml",
    "values-redpanda-local.yaml",
    "values-production.yaml",
];

/// The worker names `todo worker --only` accepts.
const WORKERS: [&str; 6] = [
    "relay",
    "audit",
    "recurrence",
    "reminders",
    "suppression",
    "scheduler",
];

/// Maps in values.yaml whose keys are free-form (an overlay may add any key under them).
const FREE_FORM: [&str; 2] = ["extraEnv", "podAnnotations"];

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/deploy/helm/todo")
}

fn load_yaml(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Helm's merge of a values file over the chart defaults: maps merge key by key, anything else is replaced.
fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// values.yaml with `file` merged over it (values.yaml itself gives the defaults alone).
fn effective_values(file: &str) -> Value {
    let dir = chart_dir();
    let mut values = load_yaml(&dir.join("values.yaml"));
    if file != "values.yaml" {
        merge(&mut values, &load_yaml(&dir.join(file)));
    }
    values
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(v, |v, key| v.as_mapping()?.get(key))
}

fn str_at<'a>(v: &'a Value, path: &str) -> &'a str {
    lookup(v, path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("`{path}` is not a string"))
}

fn u64_at(v: &Value, path: &str) -> u64 {
    lookup(v, path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("`{path}` is not an unsigned integer"))
}

fn profile_of(values: &Value) -> Profile {
    str_at(values, "kafka.profile")
        .parse()
        .expect("kafka.profile is local or cloud")
}

/// Every `.Values.a.b.c` reference in the chart's templates.
fn template_value_paths() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut stack = vec![chart_dir().join("templates")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("templates directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("template text");
            for (i, _) in text.match_indices(".Values.") {
                let rest = &text[i + ".Values.".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                    .unwrap_or(rest.len());
                let p = rest[..end].trim_end_matches('.');
                if !p.is_empty() {
                    paths.insert(p.to_owned());
                }
            }
        }
    }
    paths
}

/// Leaf paths of `overlay` that values.yaml does not define (typos in an overlay are silently ignored by Helm).
fn unknown_keys(defaults: &Mapping, overlay: &Mapping, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in overlay {
        let key = k.as_str().expect("string keys");
        let path = format!("{prefix}{key}");
        match defaults.get(key) {
            None => out.push(path),
            Some(Value::Mapping(d)) if !d.is_empty() && !FREE_FORM.contains(&key) => {
                if let Value::Mapping(o) = v {
                    unknown_keys(d, o, &format!("{path}."), out);
                }
            }
            Some(_) => {}
        }
    }
}

#[test]
fn chart_topics_match_the_registry() {
    for file in VALUES_FILES {
        let values = effective_values(file);
        let topics = lookup(&values, "topics")
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("{file}: `topics` is not a list"));
        let names: Vec<&str> = topics.iter().map(|t| str_at(t, "name")).collect();
        let registry: Vec<&str> = TOPICS.iter().map(|t| t.name).collect();
        assert_eq!(
            names, registry,
            "{file}: the chart's topics differ from todo_events::TOPICS"
        );
        for (t, spec) in topics.iter().zip(TOPICS.iter()) {
            assert_eq!(
                u64_at(t, "partitions"),
                u64::from(spec.partitions),
                "{file}: partitions of {}",
                spec.name
            );
            assert_eq!(
                u64_at(t, "retentionMs"),
                spec.retention_ms(),
                "{file}: retention of {}",
                spec.name
            );
        }
        for profile in [Profile::Local, Profile::Cloud] {
            let expected: BTreeSet<u16> = TOPICS.iter().map(|t| t.replication(profile)).collect();
            assert_eq!(
                expected.len(),
                1,
                "the chart has one replication factor per profile; the registry now varies it by topic"
            );
            let chart = u64_at(&values, &format!("kafka.replication.{}", profile.as_str()));
            assert_eq!(
                Some(chart),
                expected.first().map(|&r| u64::from(r)),
                "{file}: replication factor of profile {profile}"
            );
        }
        profile_of(&values);
    }
}

#[test]
fn values_files_parse_and_define_every_key_the_templates_use() {
    let used = template_value_paths();
    for must in [
        "topics",
        "kafka.provider",
        "workers.groups",
        "existingSecret",
        "ingress.enabled",
    ] {
        assert!(
            used.contains(must),
            "the template scan found no `.Values.{must}`"
        );
    }
    let defaults = load_yaml(&chart_dir().join("values.yaml"));
    for file in VALUES_FILES {
        let values = effective_values(file);
        let missing: Vec<&String> = used
            .iter()
            .filter(|p| lookup(&values, p).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "{file}: keys the templates read are missing: {missing:?}"
        );
        let overlay = load_yaml(&chart_dir().join(file));
        let mut unknown = Vec::new();
        unknown_keys(
            defaults.as_mapping().expect("values.yaml is a map"),
            overlay.as_mapping().expect("a values file is a map"),
            "",
            &mut unknown,
        );
        assert!(
            unknown.is_empty(),
            "{file}: keys that values.yaml does not define (typos?): {unknown:?}"
        );
    }
}

#[test]
fn worker_groups_run_every_worker() {
    for file in VALUES_FILES {
        let values = effective_values(file);
        let groups = lookup(&values, "workers.groups")
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("{file}: workers.groups is not a list"));
        assert!(!groups.is_empty(), "{file}: no worker group");
        let mut running = BTreeSet::new();
        let mut names = BTreeSet::new();
        for g in groups {
            assert!(
                names.insert(str_at(g, "name")),
                "{file}: duplicate group name"
            );
            assert!(
                u64_at(g, "replicas") >= 1,
                "{file}: a group with no replica"
            );
            let only = lookup(g, "only").and_then(Value::as_str).unwrap_or("");
            let listed: Vec<&str> = only
                .split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .collect();
            for w in &listed {
                assert!(WORKERS.contains(w), "{file}: unknown worker `{w}`");
            }
            if listed.is_empty() {
                running.extend(WORKERS);
            } else {
                running.extend(listed);
            }
        }
        assert_eq!(
            running,
            BTreeSet::from(WORKERS),
            "{file}: the worker groups leave a worker out"
        );
    }
}

#[test]
fn values_overlays_pick_the_deployment_they_are_named_for() {
    let local = effective_values("values-local.yaml");
    assert_eq!(str_at(&local, "kafka.provider"), "strimzi");
    assert_eq!(profile_of(&local), Profile::Local);

    let redpanda = effective_values("values-redpanda-local.yaml");
    assert_eq!(str_at(&redpanda, "kafka.provider"), "redpanda");
    assert_eq!(profile_of(&redpanda), Profile::Local);
    assert_eq!(
        lookup(&redpanda, "topicsJob.enabled"),
        Some(&Value::Bool(true)),
        "Redpanda has no KafkaTopic operator: the topics Job must create the topics"
    );

    let prod = effective_values("values-production.yaml");
    assert_eq!(str_at(&prod, "kafka.provider"), "external");
    assert_eq!(profile_of(&prod), Profile::Cloud);
    assert_eq!(str_at(&prod, "kafka.securityProtocol"), "sasl_ssl");
    assert!(str_at(&prod, "kafka.saslMechanism").starts_with("SCRAM-SHA-"));
    assert!(
        !str_at(&prod, "existingSecret").is_empty(),
        "production reads its secrets from an existing Secret"
    );
    assert!(u64_at(&prod, "api.replicas") >= 2);
    assert_eq!(lookup(&prod, "ingress.enabled"), Some(&Value::Bool(true)));
}

// ---------------------------------------------------------------------------------------------------------
// Rendering with Helm
// ---------------------------------------------------------------------------------------------------------

/// Renders the chart offline through Helm's Go SDK and lints it; prints a `helm template`-like stream.
const PY_RENDER: &str = r#"
import sys
import helm_python as helm

def merge(a, b):
    for k, v in (b or {}).items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            merge(a[k], v)
        else:
            a[k] = v
    return a

chart, files = sys.argv[1], sys.argv[2:]
values = {}
for f in files:
    with open(f) as fh:
        merge(values, helm.values_from_yaml(fh.read()))
report = helm.lint(chart, values, namespace="todo")
problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 3] + report.get("errors", [])
if problems:
    sys.exit("helm lint: %r" % problems)
with helm.Chart.load(chart) as c:
    out = c.render(values, name="todo", namespace="todo")
for path in sorted(out):
    if path.endswith("NOTES.txt"):
        continue
    sys.stdout.write("---\n# Source: %s\n%s\n" % (path, out[path]))
"#;

#[derive(Clone, Copy, Debug)]
enum Renderer {
    HelmCli,
    HelmPythonSdk,
}

fn find_renderer() -> Option<Renderer> {
    let works = |cmd: &mut Command| cmd.output().map(|o| o.status.success()).unwrap_or(false);
    if works(Command::new("helm").args(["version", "--short"])) {
        return Some(Renderer::HelmCli);
    }
    if works(Command::new("python3").args(["-c", "import helm_python"])) {
        return Some(Renderer::HelmPythonSdk);
    }
    None
}

/// `helm template` of the chart with these values files (later ones win), as a manifest stream.
fn render(renderer: Renderer, files: &[PathBuf]) -> Result<String, String> {
    let chart = chart_dir();
    let output = match renderer {
        Renderer::HelmCli => {
            let mut lint = Command::new("helm");
            lint.arg("lint").arg(&chart).args(["--namespace", "todo"]);
            let mut template = Command::new("helm");
            template
                .args(["template", "todo"])
                .arg(&chart)
                .args(["--namespace", "todo"]);
            for f in files {
                lint.arg("-f").arg(f);
                template.arg("-f").arg(f);
            }
            let linted = lint.output().map_err(|e| e.to_string())?;
            if !linted.status.success() {
                return Err(format!(
                    "helm lint: {}{}",
                    String::from_utf8_lossy(&linted.stdout),
                    String::from_utf8_lossy(&linted.stderr)
                ));
            }
            template.output()
        }
        Renderer::HelmPythonSdk => Command::new("python3")
            .args(["-c", PY_RENDER])
            .arg(&chart)
            .args(files)
            .output(),
    }
    .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).expect("UTF-8 manifests"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Every non-empty document of a manifest stream, each checked to be a Kubernetes object.
fn documents(stream: &str, what: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(stream) {
        let doc = <Value as serde::Deserialize>::deserialize(de)
            .unwrap_or_else(|e| panic!("{what}: rendered YAML does not parse: {e}"));
        if doc.is_null() {
            continue;
        }
        for key in ["apiVersion", "kind", "metadata.name"] {
            assert!(
                lookup(&doc, key).and_then(Value::as_str).is_some(),
                "{what}: a rendered object has no {key}: {doc:?}"
            );
        }
        docs.push(doc);
    }
    docs
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| str_at(d, "kind") == kind).collect()
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| str_at(d, "metadata.name") == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn first_container(workload: &Value) -> &Value {
    lookup(workload, "spec.template.spec.containers")
        .and_then(Value::as_sequence)
        .and_then(|c| c.first())
        .expect("a container")
}

fn args_of(workload: &Value) -> Vec<&str> {
    lookup(first_container(workload), "args")
        .and_then(Value::as_sequence)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn env_names(workload: &Value) -> Vec<&str> {
    lookup(first_container(workload), "env")
        .and_then(Value::as_sequence)
        .map(|e| e.iter().map(|v| str_at(v, "name")).collect())
        .unwrap_or_default()
}

/// The rendered KafkaTopic resources against the registry, for a profile.
fn assert_kafka_topics(docs: &[Value], profile: Profile, what: &str) {
    let topics = of_kind(docs, "KafkaTopic");
    assert_eq!(topics.len(), TOPICS.len(), "{what}: KafkaTopic count");
    for t in topics {
        let name = str_at(t, "spec.topicName");
        let spec = TopicSpec::by_name(name)
            .unwrap_or_else(|| panic!("{what}: KafkaTopic {name} is not in the registry"));
        assert_eq!(
            u64_at(t, "spec.partitions"),
            u64::from(spec.partitions),
            "{what}: partitions of {name}"
        );
        assert_eq!(
            u64_at(t, "spec.replicas"),
            u64::from(spec.replication(profile)),
            "{what}: replicas of {name} ({profile})"
        );
        let retention = lookup(t, "spec.config")
            .and_then(|c| c.as_mapping()?.get("retention.ms"))
            .and_then(Value::as_u64);
        assert_eq!(
            retention,
            Some(spec.retention_ms()),
            "{what}: retention.ms of {name}"
        );
        let cluster = lookup(t, "metadata.labels")
            .and_then(|l| l.as_mapping()?.get("strimzi.io/cluster"))
            .and_then(Value::as_str);
        assert!(
            cluster.is_some(),
            "{what}: KafkaTopic {name} has no strimzi.io/cluster label"
        );
    }
}

/// What every rendering must contain: the API and worker Deployments with probes, the Service, the migration Job.
fn assert_common(docs: &[Value], values: &Value, what: &str) {
    let api = named(docs, "Deployment", "todo-api");
    assert_eq!(args_of(api), ["serve"], "{what}: API args");
    assert!(
        env_names(api).contains(&"TODO_API_ONLY"),
        "{what}: API not --api-only"
    );
    assert_eq!(
        u64_at(api, "spec.replicas"),
        u64_at(values, "api.replicas"),
        "{what}: API replicas"
    );
    let groups = lookup(values, "workers.groups")
        .and_then(Value::as_sequence)
        .expect("groups");
    let workers: Vec<&Value> = of_kind(docs, "Deployment")
        .into_iter()
        .filter(|d| args_of(d) == ["worker"])
        .collect();
    assert_eq!(
        workers.len(),
        groups.len(),
        "{what}: one worker Deployment per group"
    );
    for d in workers.iter().copied().chain([api]) {
        let c = first_container(d);
        assert_eq!(
            str_at(c, "livenessProbe.httpGet.path"),
            "/healthz",
            "{what}"
        );
        assert_eq!(
            str_at(c, "readinessProbe.httpGet.path"),
            "/readyz",
            "{what}"
        );
        assert!(
            env_names(d).contains(&"TODO_DATABASE_URL"),
            "{what}: no database URL"
        );
    }
    named(docs, "Service", "todo");
    let migrate = named(docs, "Job", "todo-migrate");
    assert_eq!(args_of(migrate), ["migrate"], "{what}");
    let hook = lookup(migrate, "metadata.annotations")
        .and_then(|a| a.as_mapping()?.get("helm.sh/hook"))
        .and_then(Value::as_str);
    assert_eq!(
        hook,
        Some("pre-install,pre-upgrade"),
        "{what}: migration hook"
    );
    if lookup(values, "topicsJob.enabled") == Some(&Value::Bool(true)) {
        let topics = named(docs, "Job", "todo-topics");
        assert_eq!(
            args_of(topics),
            ["topics", "ensure", "--profile", profile_of(values).as_str()],
            "{what}: topics Job"
        );
    }
}

fn write_overlay(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).expect("write overlay");
    path
}

#[test]
fn chart_renders_with_helm_and_its_kafka_topics_match_the_registry() {
    let Some(renderer) = find_renderer() else {
        let msg = "neither `helm` nor the `helm_python` module (pip install helm-python-sdk) is available: \
                   the chart was not rendered";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED rendering: {msg}");
        return;
    };
    eprintln!("rendering the chart with {renderer:?}");
    let dir = chart_dir();
    let tmp = std::env::temp_dir().join(format!("todo-deploy-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    // The defaults alone refuse to render without a database, a token verifier and a broker: supply them.
    let required = write_overlay(
        &tmp,
        "required.yaml",
        "database: {url: 'postgres://todo@db:5432/todo'}\nauth: {jwtSecret: test-secret}\n\
         kafka: {brokers: 'broker:9092'}\n",
    );

    for file in VALUES_FILES {
        let values = effective_values(file);
        let mut files = vec![dir.join(file)];
        if file == "values.yaml" {
            files.push(required.clone());
        }
        let stream = render(renderer, &files).unwrap_or_else(|e| panic!("{file}: {e}"));
        let docs = documents(&stream, file);
        let mut effective = values.clone();
        if file == "values.yaml" {
            merge(&mut effective, &load_yaml(&required));
        }
        assert_common(&docs, &effective, file);
        let provider = str_at(&values, "kafka.provider");
        match provider {
            "strimzi" => {
                assert_kafka_topics(&docs, profile_of(&values), file);
                assert_eq!(of_kind(&docs, "Kafka").len(), 1, "{file}: Kafka");
                assert_eq!(
                    of_kind(&docs, "KafkaNodePool").len(),
                    1,
                    "{file}: KafkaNodePool"
                );
            }
            "redpanda" => {
                assert!(of_kind(&docs, "KafkaTopic").is_empty(), "{file}");
                let sts = named(&docs, "StatefulSet", "redpanda");
                assert_eq!(u64_at(sts, "spec.replicas"), 1, "{file}: one broker");
                named(&docs, "Service", "redpanda");
            }
            _ => {
                for kind in ["KafkaTopic", "Kafka", "StatefulSet"] {
                    assert!(
                        of_kind(&docs, kind).is_empty(),
                        "{file}: {kind} with an external broker"
                    );
                }
            }
        }
        let ingresses = of_kind(&docs, "Ingress").len();
        let want_ingress = lookup(&values, "ingress.enabled") == Some(&Value::Bool(true));
        assert_eq!(ingresses, usize::from(want_ingress), "{file}: Ingress");
        if file == "values-production.yaml" {
            assert!(
                of_kind(&docs, "Secret").is_empty(),
                "{file}: existingSecret must not render a Secret"
            );
            assert_eq!(
                of_kind(&docs, "PodDisruptionBudget").len(),
                1 + 2,
                "{file}: PDBs"
            );
        }
    }

    // Strimzi with the cloud profile: every KafkaTopic takes the cloud replication factor.
    let cloud = write_overlay(&tmp, "cloud.yaml", "kafka: {profile: cloud}\n");
    let stream = render(renderer, &[dir.join("values-local.yaml"), cloud])
        .unwrap_or_else(|e| panic!("strimzi, cloud profile: {e}"));
    assert_kafka_topics(
        &documents(&stream, "strimzi cloud"),
        Profile::Cloud,
        "strimzi cloud",
    );

    // A misspelt worker name is refused at render time, not at pod start.
    let typo = write_overlay(
        &tmp,
        "typo.yaml",
        "workers: {groups: [{name: all, only: 'relya', replicas: 1}]}\n",
    );
    let refused = render(renderer, &[dir.join("values-local.yaml"), typo]);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("unknown worker")),
        "a misspelt worker rendered: {refused:?}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
