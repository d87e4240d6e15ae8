//! Files and secrets a pull request can reach: secret files confined to the
//! fleet's tree, every fleet entry read or refused, temporary files no
//! other user can take over, Secret files private, a deployable etcd key
//! from `render --show-secrets`, and a broken live etcd key refused.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Output;

use base64::Engine;

use crate::support::{hcpc, pull_secret_in, repo, stderr, stdout, yaml_docs};

const RELEASE: &str = "quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64";

fn run(dir: &Path, args: &[&str]) -> Output {
    hcpc().current_dir(dir).args(args).output().unwrap()
}

/// A fleet of one cluster on a `dir` target, `extra` inside the cluster.
fn fleet(dir: &Path, head: &str, extra: &str) {
    pull_secret_in(dir);
    std::fs::write(
        dir.join("fleet.kdl"),
        format!(
            "target dir \"out\"\n{head}cluster a {{\n    release \"{RELEASE}\"\n    pull-secret file=\"pull-secret.json\"\n    prevent-destroy #false\n{extra}    node-pool w replicas=1\n}}\n"
        ),
    )
    .unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn secret_files_outside_the_fleet_tree_are_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, elsewhere) = (tmp.path().join("fleet"), tmp.path().join("elsewhere"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(repo().join("examples/secrets/infra-kubeconfig.yaml"), elsewhere.join("kubeconfig")).unwrap();

    // An absolute path, `..`, and a symlink inside the tree that leads out.
    symlink(elsewhere.join("kubeconfig"), dir.join("link.yaml")).unwrap();
    for path in
        [elsewhere.join("kubeconfig").display().to_string(), "../elsewhere/kubeconfig".into(), "link.yaml".into()]
    {
        fleet(&dir, "", &format!("    infra-cluster namespace=vms kubeconfig-file=\"{path}\"\n"));
        let o = run(&dir, &["check", "--format", "json"]);
        assert_eq!(o.status.code(), Some(1), "{path}: {}", stdout(&o));
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let d = &doc["diagnostics"][0];
        assert_eq!(d["code"], "hcpc::input::path_outside", "{path}: {doc}");
        assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(6), Some(33)), "{path}: {doc}");
        assert!(d["help"].as_str().unwrap().contains("allow-paths-outside"), "{doc}");
        // Nothing is written: apply stops before the target.
        assert_eq!(run(&dir, &["apply", "--auto-approve"]).status.code(), Some(1));
        assert!(!dir.join("out").exists(), "{path}: nothing written");
    }

    // The opt-out is a visible line of the fleet.
    fleet(&dir, "allow-paths-outside\n", "    infra-cluster namespace=vms kubeconfig-file=\"link.yaml\"\n");
    let o = run(&dir, &["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn an_infrastructure_kubeconfig_must_be_a_kubeconfig() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    fleet(dir, "", "    infra-cluster namespace=vms kubeconfig-file=\"passwd\"\n");
    let o = run(dir, &["check"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("hcpc::input::secret_format"), "{err}");
    assert!(err.contains("is not a kubeconfig"), "{err}");
    assert!(!err.contains("/bin/bash"), "never quotes the file: {err}");
}

#[test]
fn the_plan_names_each_secret_source_never_its_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::copy(repo().join("examples/secrets/infra-kubeconfig.yaml"), dir.join("infra.yaml")).unwrap();
    fleet(dir, "", "    infra-cluster namespace=vms kubeconfig-file=\"infra.yaml\"\n");
    let o = run(dir, &["plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("data[\".dockerconfigjson\"] = (sensitive, from file pull-secret.json)"), "{out}");
    assert!(out.contains("data.kubeconfig = (sensitive, from file infra.yaml)"), "{out}");
    assert!(!out.contains("fake-token") && !out.contains("auths"), "{out}");
}

#[test]
fn fleet_entries_that_are_not_regular_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, "", "");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));

    type Make = fn(&Path);
    let cases: [(&str, Make); 4] = [
        ("dangling symlink", |p| symlink("gone.kdl", p).unwrap()),
        ("symlink loop", |p| symlink(p.file_name().unwrap(), p).unwrap()),
        ("FIFO", |p| assert!(std::process::Command::new("mkfifo").arg(p).status().unwrap().success())),
        ("directory", |p| std::fs::create_dir(p).unwrap()),
    ];
    for (what, make) in cases {
        let entry = dir.join("b.kdl");
        make(&entry);
        for command in ["check", "plan"] {
            let o = run(dir, &[command]);
            assert_eq!(o.status.code(), Some(1), "{what}, {command}: {}{}", stdout(&o), stderr(&o));
            assert!(stderr(&o).contains("b.kdl"), "{what}, {command}: {}", stderr(&o));
            assert!(!stdout(&o).contains("destroy"), "{what}: no plan at all: {}", stdout(&o));
        }
        if entry.is_dir() && !entry.is_symlink() {
            std::fs::remove_dir(&entry).unwrap();
        } else {
            std::fs::remove_file(&entry).unwrap();
        }
    }
}

#[test]
fn render_writes_secret_files_private_and_takes_over_no_temporary_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, "", "");
    let out = dir.join("rendered");
    let folder = out.join("clusters");
    std::fs::create_dir_all(&folder).unwrap();
    // Another user's traps under the names the temporary files once had
    // (`.NAME.tmp-PID`) for the next pids: a file open to everyone, and a
    // symlink to a file of theirs.
    let victim = dir.join("victim");
    std::fs::write(&victim, "theirs\n").unwrap();
    let next = std::process::id();
    for pid in next..next + 200 {
        let trap = folder.join(format!(".Secret.a-pull-secret.yaml.tmp-{pid}"));
        std::fs::write(&trap, "").unwrap();
        std::fs::set_permissions(&trap, std::fs::Permissions::from_mode(0o666)).unwrap();
        symlink(&victim, folder.join(format!(".NodePool.a-w.yaml.tmp-{pid}"))).unwrap();
    }

    // Under umask 000: the modes must not come from the umask.
    let o = std::process::Command::new("sh")
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .arg("-c")
        .arg(format!("umask 000; exec {} render --show-secrets -o rendered fleet.kdl", env!("CARGO_BIN_EXE_hcpc")))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(mode(&folder.join("Secret.a-pull-secret.yaml")), 0o600, "Secret files are the owner's only");
    assert_eq!(mode(&folder.join("Secret.a-etcd-encryption-key.yaml")), 0o600);
    assert_eq!(mode(&folder.join("NodePool.a-w.yaml")), 0o644, "exact mode whatever the umask");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "theirs\n", "a symlink is never followed");
    let trap = folder.join(format!(".Secret.a-pull-secret.yaml.tmp-{}", next + 1));
    assert_eq!(std::fs::read(&trap).unwrap(), b"", "a pre-created file receives nothing");
}

#[test]
fn render_with_secrets_writes_a_random_32_byte_etcd_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, "", "");
    let key = |text: &str| {
        let docs = yaml_docs(text);
        let secret = docs.iter().find(|d| d["metadata"]["name"] == "a-etcd-encryption-key").expect("etcd key");
        let key = secret["data"]["key"].as_str().expect("data.key").to_string();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(&key).unwrap().len(), 32);
        key
    };
    let first = key(&stdout(&run(dir, &["render", "--show-secrets", "fleet.kdl"])));
    let second = key(&stdout(&run(dir, &["render", "--show-secrets", "fleet.kdl"])));
    assert_ne!(first, second, "random on every run");
    // Masked output has no key to mask: none is shown.
    let masked = stdout(&run(dir, &["render", "fleet.kdl"]));
    assert!(!masked.contains(&first) && !masked.contains("key: "), "{masked}");

    let o = run(dir, &["render", "--show-secrets", "-o", "rendered", "fleet.kdl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    key(&std::fs::read_to_string(dir.join("rendered/clusters/Secret.a-etcd-encryption-key.yaml")).unwrap());
}

#[test]
fn a_live_etcd_key_without_a_32_byte_key_is_a_plan_error_and_is_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, "", "");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    let file = dir.join("out/clusters/Secret.a-etcd-encryption-key.yaml");
    let good = std::fs::read_to_string(&file).unwrap();

    // As `render --show-secrets | kubectl apply` of an older hcpc left it: no data.
    let mut doc = yaml_docs(&good).remove(0);
    doc.as_object_mut().unwrap().remove("data");
    std::fs::write(&file, serde_saphyr::to_string(&doc).unwrap()).unwrap();
    let o = run(dir, &["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("hcpc::plan::etcd_key_invalid"), "{err}");
    assert!(err.contains("Secret/clusters/a-etcd-encryption-key has no `key`"), "{err}");
    assert!(err.contains("never replaces an existing etcd key"), "{err}");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(1));
    assert!(!std::fs::read_to_string(&file).unwrap().contains("key:"), "never replaced");

    // A key of the wrong length.
    doc["data"] = serde_json::json!({ "key": base64::engine::general_purpose::STANDARD.encode([7u8; 16]) });
    std::fs::write(&file, serde_saphyr::to_string(&doc).unwrap()).unwrap();
    let err = stderr(&run(dir, &["plan"]));
    assert!(err.contains("has a `key` that is not 32 bytes long"), "{err}");

    std::fs::write(&file, &good).unwrap();
    assert_eq!(run(dir, &["plan"]).status.code(), Some(0));
}

#[test]
fn saved_plans_digest_secret_data_with_their_own_random_key() {
    use sha2::Digest;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, "", "");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    // A change, so that the plan records the live pull secret's version.
    std::fs::write(dir.join("pull-secret.json"), "{\"auths\":{\"quay.io\":{\"auth\":\"bmV3\"}}}\n").unwrap();
    let saved = |name: &str| {
        let o = run(dir, &["plan", "--out", name]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        std::fs::read_to_string(dir.join(name)).unwrap()
    };
    let (one, two) = (saved("one.json"), saved("two.json"));
    let data = base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join("pull-secret.json")).unwrap());
    // The unkeyed digests an older hcpc recorded: of the data, and of the live file.
    let plain = format!("{:x}", sha2::Sha256::digest(serde_json::to_string(&data).unwrap().as_bytes()));
    let live = std::fs::read(dir.join("out/clusters/Secret.a-pull-secret.yaml")).unwrap();
    let live_plain = format!("{:x}", sha2::Sha256::digest(&live));
    for text in [&one, &two] {
        assert!(!text.contains(&plain) && !text.contains(&live_plain), "no unkeyed digest of Secret data");
        assert!(!text.contains(&data), "never the data itself");
    }
    let pull = |text: &str| {
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        let desired = doc["targets"][0]["desired"].as_array().unwrap().clone();
        let secret = desired.into_iter().find(|o| o["metadata"]["name"] == "a-pull-secret").unwrap();
        secret["data"][".dockerconfigjson"].as_str().unwrap().to_string()
    };
    assert!(pull(&one).starts_with("hmac-sha256:"), "{}", pull(&one));
    assert_ne!(pull(&one), pull(&two), "each plan has its own key");

    // Still applied exactly, and still refused once a secret changed.
    let o = run(dir, &["apply", "--auto-approve", "one.json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    std::fs::write(dir.join("pull-secret.json"), "{\"auths\":{\"quay.io\":{\"auth\":\"b3RoZXI=\"}}}\n").unwrap();
    let o = run(dir, &["apply", "--auto-approve", "two.json"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("hcpc::plan::stale"), "{}", stderr(&o));
    assert!(stderr(&o).contains("a secret the configuration reads changed"), "{}", stderr(&o));

    // The printed plan's input digest does not depend on secret values, so
    // it cannot confirm a guess either.
    let digest = || {
        let o = run(dir, &["plan", "--format", "json"]);
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        doc["input_digest"].as_str().unwrap().to_string()
    };
    let before = digest();
    std::fs::write(dir.join("pull-secret.json"), "{\"auths\":{\"quay.io\":{\"auth\":\"Z3Vlc3M=\"}}}\n").unwrap();
    assert_eq!(digest(), before);
}

#[test]
fn an_etcd_key_secret_is_referenced_and_never_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, "", "    etcd key-secret=shared-etcd-key\n");
    let o = run(dir, &["render", "--show-secrets", "fleet.kdl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let docs = yaml_docs(&stdout(&o));
    let hc = docs.iter().find(|d| d["kind"] == "HostedCluster").unwrap();
    assert_eq!(hc["spec"]["secretEncryption"]["aescbc"]["activeKey"]["name"], "shared-etcd-key");
    let secrets: Vec<&str> =
        docs.iter().filter(|d| d["kind"] == "Secret").map(|d| d["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(secrets, ["a-pull-secret"], "no key Secret is rendered");

    // A GitOps directory then holds no etcd key.
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    let files: Vec<String> = std::fs::read_dir(dir.join("out/clusters"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().all(|f| !f.contains("etcd")), "{files:?}");
}
