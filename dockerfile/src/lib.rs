//! The Dockerfile front end of servin's image builder: pure, no I/O.
//!
//! - [`parse`] reads a Dockerfile into a typed [`Dockerfile`] (stages,
//!   instructions, here-documents, `RUN --mount`s), its operands kept as
//!   written. It builds on `parse-dockerfile` for each instruction's
//!   structure; `logical` finds here-documents anywhere on a line first.
//! - [`expand`] and [`expand_words`] are Docker's word expansion, and
//!   [`Instruction::expanded`] applies it to the operands Docker expands.
//! - [`plan()`] resolves build arguments, `FROM` images and stage references
//!   for a target, giving the stages to build, in order, with their
//!   dependencies (so independent stages can run in parallel).
//! - Every mistake is a [`DockerfileError`]: a `miette` diagnostic at the
//!   exact span, with a code and help, and a [`WireError`] form for the
//!   engine to send and the CLI to render again.
//!
//! Modules: `directives` (`# syntax`, `# escape`, `# check`), `logical`
//! (logical lines and here-documents), `parse` (typed layer), `mount`
//! (`RUN --mount`), `duration` (Go durations), `shell` (expansion),
//! `expand` (which operands are expanded), `plan` (stages and arguments),
//! `error` (diagnostics).

#![deny(missing_docs)]

mod directives;
mod duration;
mod error;
mod expand;
mod instruction;
mod logical;
mod mount;
mod parse;
mod plan;
mod shell;

pub use self::duration::parse_go_duration;
pub use self::error::{DockerfileError, ErrorCode, WireError};
pub use self::instruction::{
    AddInstr, ArgDecl, CacheSharing, Command, CopyInstr, Dockerfile, FromInstr, Healthcheck,
    Heredoc, Instruction, InstructionKind, RunMount, RunNetwork, Stage,
};
pub use self::parse::parse;
pub use self::plan::{ArgScope, Base, BuildPlan, PROXY_ARGS, PlannedStage, Platform, plan};
pub use self::shell::{ExpandError, Expansion, expand, expand_tracked, expand_words};
