//! The subset of the Kubernetes API objects `kube play` runs, as serde
//! types. A key none of them models is not dropped silently: the parser
//! reads each document through `serde_ignored`, which names every key left
//! out, and each becomes a warning.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Value as Y;

/// `metadata`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A Pod.
#[derive(Debug, Clone, Deserialize)]
pub struct Pod {
    #[serde(default)]
    pub metadata: Metadata,
    pub spec: PodSpec,
}

/// A Deployment.
#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    #[serde(default)]
    pub metadata: Metadata,
    pub spec: DeploymentSpec,
}

/// `Deployment.spec`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentSpec {
    #[serde(default)]
    pub replicas: Option<u32>,
    #[serde(default)]
    pub selector: Option<LabelSelector>,
    pub template: PodTemplate,
}

/// A label selector.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// `spec.template`.
#[derive(Debug, Clone, Deserialize)]
pub struct PodTemplate {
    #[serde(default)]
    pub metadata: Metadata,
    pub spec: PodSpec,
}

/// A pod's spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub containers: Vec<Container>,
    #[serde(default)]
    pub init_containers: Vec<Container>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub restart_policy: Option<String>,
    #[serde(default)]
    pub security_context: Option<SecurityContext>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub termination_grace_period_seconds: Option<u32>,
}

/// A container (or init container).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub env_from: Vec<EnvFrom>,
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default)]
    pub readiness_probe: Option<Probe>,
    #[serde(default)]
    pub liveness_probe: Option<Probe>,
    #[serde(default)]
    pub startup_probe: Option<Probe>,
    #[serde(default)]
    pub security_context: Option<SecurityContext>,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(default)]
    pub image_pull_policy: Option<String>,
    #[serde(default)]
    pub tty: Option<bool>,
    #[serde(default)]
    pub stdin: Option<bool>,
}

/// `env[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub value_from: Option<EnvVarSource>,
}

/// `env[].valueFrom`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarSource {
    #[serde(default)]
    pub config_map_key_ref: Option<KeyRef>,
    #[serde(default)]
    pub secret_key_ref: Option<KeyRef>,
}

/// `configMapKeyRef` / `secretKeyRef`.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyRef {
    pub name: String,
    pub key: String,
    #[serde(default)]
    pub optional: Option<bool>,
}

/// `envFrom[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvFrom {
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub config_map_ref: Option<NameRef>,
    #[serde(default)]
    pub secret_ref: Option<NameRef>,
}

/// `configMapRef` / `secretRef`.
#[derive(Debug, Clone, Deserialize)]
pub struct NameRef {
    pub name: String,
    #[serde(default)]
    pub optional: Option<bool>,
}

/// `ports[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub container_port: u16,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub host_port: Option<u16>,
    #[serde(default)]
    pub protocol: Option<String>,
}

/// `volumeMounts[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub sub_path: Option<String>,
}

/// A port given as a number or by its name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(u16),
    String(String),
}

/// A probe.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    #[serde(default)]
    pub exec: Option<ExecAction>,
    #[serde(default)]
    pub http_get: Option<HttpGetAction>,
    #[serde(default)]
    pub initial_delay_seconds: Option<u32>,
    #[serde(default)]
    pub period_seconds: Option<u32>,
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
    #[serde(default)]
    pub failure_threshold: Option<u32>,
}

/// `exec`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExecAction {
    #[serde(default)]
    pub command: Vec<String>,
}

/// `httpGet`.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpGetAction {
    #[serde(default)]
    pub path: Option<String>,
    pub port: IntOrString,
}

/// A pod's or a container's `securityContext`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    #[serde(default)]
    pub run_as_user: Option<i64>,
    #[serde(default)]
    pub run_as_group: Option<i64>,
    #[serde(default)]
    pub privileged: Option<bool>,
    #[serde(default)]
    pub read_only_root_filesystem: Option<bool>,
    #[serde(default)]
    pub allow_privilege_escalation: Option<bool>,
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
}

/// `capabilities`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub drop: Vec<String>,
}

/// `resources`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Resources {
    /// Quantities, written as strings or numbers.
    #[serde(default)]
    pub limits: BTreeMap<String, Y>,
    #[serde(default)]
    pub requests: BTreeMap<String, Y>,
}

/// A pod volume.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    #[serde(default)]
    pub config_map: Option<ConfigMapVolume>,
    #[serde(default)]
    pub secret: Option<SecretVolume>,
    #[serde(default)]
    pub persistent_volume_claim: Option<ClaimVolume>,
    #[serde(default)]
    pub empty_dir: Option<Y>,
    #[serde(default)]
    pub host_path: Option<HostPathVolume>,
}

/// `configMap` of a volume.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigMapVolume {
    pub name: String,
    #[serde(default)]
    pub items: Option<Vec<KeyToPath>>,
    #[serde(default)]
    pub optional: Option<bool>,
}

/// `secret` of a volume.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretVolume {
    pub secret_name: String,
    #[serde(default)]
    pub items: Option<Vec<KeyToPath>>,
    #[serde(default)]
    pub optional: Option<bool>,
}

/// `items[]` of a ConfigMap or Secret volume.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyToPath {
    pub key: String,
    pub path: String,
}

/// `persistentVolumeClaim` of a volume.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimVolume {
    pub claim_name: String,
    #[serde(default)]
    pub read_only: Option<bool>,
}

/// `hostPath` of a volume.
#[derive(Debug, Clone, Deserialize)]
pub struct HostPathVolume {
    pub path: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// A Service.
#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    #[serde(default)]
    pub metadata: Metadata,
    pub spec: ServiceSpec,
}

/// `Service.spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default)]
    pub selector: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default, rename = "clusterIP")]
    pub cluster_ip: Option<String>,
}

/// `Service.spec.ports[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub port: u16,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub target_port: Option<IntOrString>,
    #[serde(default)]
    pub protocol: Option<String>,
}

/// A ConfigMap.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMap {
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    #[serde(default)]
    pub binary_data: BTreeMap<String, String>,
}

/// A Secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// A PersistentVolumeClaim.
#[derive(Debug, Clone, Deserialize)]
pub struct PersistentVolumeClaim {
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: Option<ClaimSpec>,
}

/// `PersistentVolumeClaim.spec`: what a local named volume has no use for
/// (access modes, requested size, volume mode) is accepted and said so in
/// the book; the rest is named and skipped.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSpec {
    #[serde(default)]
    pub access_modes: Option<Y>,
    #[serde(default)]
    pub resources: Option<Y>,
    #[serde(default)]
    pub volume_mode: Option<Y>,
}
