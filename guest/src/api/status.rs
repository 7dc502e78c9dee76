//! The HTTP status of every engine error: the one place where the
//! engine's typed errors meet HTTP. Docker's statuses where Docker has one
//! for the same refusal (404 for a missing object, 409 for a conflict with
//! the current state, 403 for an operation not allowed on a pre-defined or
//! busy network, 400 for a bad value, 501 for an unserved call).

use hyper::StatusCode;

use crate::build::error::BuildError;
use crate::reconcile::pending::PendingError;

use crate::error::{
    ContainerError, Error, ImageError, NetworkError, RequestError, SpecError, VolumeError,
};

/// The status the API answers `e` with.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::NoSuchImage(_)
        | Error::NoSuchContainer(_)
        | Error::NoSuchExec(_)
        | Error::NoSuchNetwork(_)
        | Error::NoSuchVolume(_) => StatusCode::NOT_FOUND,
        Error::CommandNotFound(_) => StatusCode::BAD_REQUEST,
        Error::AlreadyListening(_) => StatusCode::CONFLICT,
        Error::Registry { status, .. } => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Error::Io { .. }
        | Error::Content { .. }
        | Error::Unpack { .. }
        | Error::Json { .. }
        | Error::Runtime { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        Error::Image(e) => image(e),
        Error::Container(e) => container(e),
        Error::Network(e) => network(e),
        Error::Volume(e) => volume(e),
        Error::Spec(e) => match e {
            SpecError::Invalid(_) | SpecError::NoSuchUser(_) | SpecError::NoSuchGroup(_) => {
                StatusCode::BAD_REQUEST
            }
        },
        Error::Project(_) | Error::Filter(_) => StatusCode::BAD_REQUEST,
        Error::Build(e) => match e {
            BuildError::Dockerfile { .. }
            | BuildError::Invalid(_)
            | BuildError::UnknownContext(_) => StatusCode::BAD_REQUEST,
            BuildError::RunFailed { .. }
            | BuildError::Step { .. }
            | BuildError::WouldBuild { .. }
            | BuildError::Cancelled => StatusCode::INTERNAL_SERVER_ERROR,
        },
        Error::Pending(e) => match e {
            PendingError::NoSuchApply { .. } | PendingError::NotPending { .. } => {
                StatusCode::NOT_FOUND
            }
            PendingError::AlreadyReported { .. } => StatusCode::CONFLICT,
            PendingError::BadReport(_) => StatusCode::BAD_REQUEST,
        },
        Error::Request(e) => match e {
            RequestError::Invalid(_) => StatusCode::BAD_REQUEST,
            RequestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::NotServed(_) => StatusCode::NOT_IMPLEMENTED,
            RequestError::NoSwarm => StatusCode::SERVICE_UNAVAILABLE,
        },
    }
}

fn image(e: &ImageError) -> StatusCode {
    match e {
        ImageError::InvalidReference(_)
        | ImageError::UnsupportedDigest(_)
        | ImageError::InvalidDigest(_)
        | ImageError::BadMediaType(_)
        | ImageError::InvalidPlatform(_)
        | ImageError::TagWithDigest
        | ImageError::Archive(_)
        | ImageError::Change(_) => StatusCode::BAD_REQUEST,
        ImageError::AmbiguousId(_)
        | ImageError::MultipleRepositories(_)
        | ImageError::UsedByContainer { .. } => StatusCode::CONFLICT,
        ImageError::Task(..) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn container(e: &ContainerError) -> StatusCode {
    match e {
        ContainerError::InvalidConfig(_)
        | ContainerError::CannotUpdate(_)
        | ContainerError::InvalidName(_)
        | ContainerError::AmbiguousId(_)
        | ContainerError::NotAFolder(_) => StatusCode::BAD_REQUEST,
        // Docker answers a tar it cannot read, or one that would replace a
        // folder with a file (or the reverse), with the extractor's error
        // as a 500.
        ContainerError::BadArchive(_) | ContainerError::WouldReplace(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        ContainerError::NoSuchPath { .. } => StatusCode::NOT_FOUND,
        ContainerError::ReadOnlyPath { .. } => StatusCode::FORBIDDEN,
        ContainerError::NameInUse { .. }
        | ContainerError::NoFreeName
        | ContainerError::NotRunning(_)
        | ContainerError::WrongState(_)
        | ContainerError::Paused(_)
        | ContainerError::Exec { .. } => StatusCode::CONFLICT,
        ContainerError::Networking(_) => StatusCode::FORBIDDEN,
        // Docker's start fails with a 500 when a linked container is gone
        // or stopped.
        ContainerError::LinkTarget(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn network(e: &NetworkError) -> StatusCode {
    match e {
        NetworkError::InvalidName(_)
        | NetworkError::UnsupportedDriver(_)
        | NetworkError::UnsupportedSetting(_)
        | NetworkError::AmbiguousId(..)
        | NetworkError::Ipv6Disabled(_)
        | NetworkError::Ipv4Required
        | NetworkError::SeveralSubnets
        | NetworkError::InvalidIpRange { .. }
        | NetworkError::NoIpv6 { .. }
        | NetworkError::GatewayWithoutSubnet
        | NetworkError::InvalidSubnet { .. }
        | NetworkError::InvalidGateway { .. }
        | NetworkError::InvalidAddress { .. }
        | NetworkError::UnsupportedProtocol(_)
        | NetworkError::InvalidPortSpec { .. }
        | NetworkError::NoSuchHostAddress(_) => StatusCode::BAD_REQUEST,
        NetworkError::Predefined(..) | NetworkError::InUse { .. } => StatusCode::FORBIDDEN,
        NetworkError::NameTaken { .. }
        | NetworkError::SubnetOverlaps { .. }
        | NetworkError::PoolExhausted(_)
        | NetworkError::AddressInUse { .. }
        | NetworkError::AddressesExhausted { .. }
        | NetworkError::LockTimeout(_)
        | NetworkError::PortInUse { .. }
        | NetworkError::RangeInUse(_) => StatusCode::CONFLICT,
        NetworkError::KernelModules(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn volume(e: &VolumeError) -> StatusCode {
    match e {
        VolumeError::InvalidName(_)
        | VolumeError::UnsupportedDriver(..)
        | VolumeError::InvalidOption { .. }
        | VolumeError::InvalidFilter(_) => StatusCode::BAD_REQUEST,
        VolumeError::OtherOptions(_) | VolumeError::InUse(..) | VolumeError::NotWorkspace(_) => {
            StatusCode::CONFLICT
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use super::*;

    #[test]
    fn each_refusal_answers_with_dockers_status() {
        let cases: Vec<(Error, StatusCode)> = vec![
            (
                ImageError::InvalidReference("x".into()).into(),
                StatusCode::BAD_REQUEST,
            ),
            (
                ImageError::UsedByContainer {
                    reference: "a".into(),
                    container: "b".into(),
                    image: "c".into(),
                }
                .into(),
                StatusCode::CONFLICT,
            ),
            (
                ContainerError::NameInUse {
                    name: "web".into(),
                    id: "abc".into(),
                }
                .into(),
                StatusCode::CONFLICT,
            ),
            (
                NetworkError::Predefined("host".into(), "created").into(),
                StatusCode::FORBIDDEN,
            ),
            (
                VolumeError::InUse("data".into(), "web".into()).into(),
                StatusCode::CONFLICT,
            ),
            (
                RequestError::NotServed("POST /build".into()).into(),
                StatusCode::NOT_IMPLEMENTED,
            ),
            (
                RequestError::TooLarge("big".into()).into(),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (Error::NoSuchContainer("web".into()), StatusCode::NOT_FOUND),
            (
                ContainerError::NoSuchPath {
                    container: "web".into(),
                    path: "/nope".into(),
                }
                .into(),
                StatusCode::NOT_FOUND,
            ),
            (
                ContainerError::NotAFolder("/etc/hosts".into()).into(),
                StatusCode::BAD_REQUEST,
            ),
            (
                ContainerError::ReadOnlyPath {
                    container: "web".into(),
                    path: "/".into(),
                }
                .into(),
                StatusCode::FORBIDDEN,
            ),
            (
                Error::Registry {
                    context: "pull x".into(),
                    message: "denied".into(),
                    status: 401,
                },
                StatusCode::UNAUTHORIZED,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(status_of(&e), want, "{e}");
        }
    }

    #[test]
    fn a_wrapped_cause_is_printed_once() {
        let cause = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = Error::io("read", Path::new("/var/lib/x"))(cause);
        let text = e.full_message();
        assert_eq!(text, "read /var/lib/x: entity not found");
        assert_eq!(status_of(&e), StatusCode::INTERNAL_SERVER_ERROR);
        let json = serde_json::from_str::<u8>("nope").map_err(Error::json("state.json"));
        let text = json.unwrap_err().full_message();
        assert_eq!(text.matches("expected ident").count(), 1, "{text}");
        assert!(text.starts_with("state.json: "), "{text}");
    }
}
