//! What the version rules read from a management cluster: the release
//! versions its HyperShift operator supports (ConfigMap
//! `hypershift/supported-versions`, label
//! `hypershift.openshift.io/supported-versions`, key `supported-versions`
//! holding `{"versions": ["4.19", …]}`), and the version each HostedCluster
//! runs (`status.version`, kept when a listed object's status is dropped).

use kube::api::ApiResource;
use serde_json::Value;

use super::kube::KubeTarget;
use crate::release::rules::{SupportedVersions, parse_supported};

/// Where the HyperShift operator publishes what it supports.
pub const NAMESPACE: &str = "hypershift";
pub const NAME: &str = "supported-versions";

/// One GET of the ConfigMap, run beside discovery. An absent, forbidden or
/// unreadable ConfigMap is [`SupportedVersions::Unknown`]: the plan says so
/// in a note and goes on. A server that does not answer fails the plan, as
/// it does for every other read.
pub fn read(kube: &KubeTarget) -> Result<SupportedVersions, super::kube::ApiError> {
    let config_maps = ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
    };
    match kube.get_resource(&config_maps, Some(NAMESPACE), NAME) {
        Ok(Some(cm)) => Ok(parse_supported(&cm)),
        Ok(None) => Ok(SupportedVersions::Unknown(format!("it has no ConfigMap {NAMESPACE}/{NAME}"))),
        Err(e) if e.code == 403 => {
            Ok(SupportedVersions::Unknown(format!("hcpc may not read ConfigMap {NAMESPACE}/{NAME}")))
        }
        Err(e) if (400..500).contains(&e.code) => {
            Ok(SupportedVersions::Unknown(format!("ConfigMap {NAMESPACE}/{NAME} could not be read ({e})")))
        }
        Err(e) => Err(e),
    }
}

/// Decodes a listed object's `status` down to `{"version": …}` (`None`
/// when it has none): the version rules read a HostedCluster's
/// `status.version` (desired and history), and nothing else of the
/// operator's status is built in memory.
pub(super) struct StatusVersion;

impl<'de> serde::de::DeserializeSeed<'de> for StatusVersion {
    type Value = Option<Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StatusVersion {
    type Value = Option<Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object's status")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut version = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "version" {
                version = Some(map.next_value::<Value>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(version.map(|v| serde_json::json!({ "version": v })))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeSeed;

    #[test]
    fn only_the_version_of_a_status_is_kept() {
        let text = r#"{"conditions": [{"type": "Available"}], "version": {"desired": {"version": "4.18.2"}, "history": []}, "kubeconfig": {"name": "k"}}"#;
        let mut de = serde_json::Deserializer::from_str(text);
        let kept = StatusVersion.deserialize(&mut de).unwrap();
        assert_eq!(kept, Some(serde_json::json!({"version": {"desired": {"version": "4.18.2"}, "history": []}})));
        let mut de = serde_json::Deserializer::from_str(r#"{"conditions": []}"#);
        assert_eq!(StatusVersion.deserialize(&mut de).unwrap(), None);
    }
}
