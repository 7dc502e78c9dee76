//! Which operands Docker expands, applied: [`Instruction::expanded`].
//!
//! Docker's builder expands the operands of `ADD`, `COPY`, `ENV`, `EXPOSE`,
//! `FROM`, `LABEL`, `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`, the defaults
//! of `ARG`, the values of `RUN --mount` and the `--from`, `--chown`,
//! `--chmod` and `--checksum` flags. `RUN`, `CMD`, `ENTRYPOINT`,
//! `HEALTHCHECK` and `SHELL` are left to the shell at run time, and an
//! `ONBUILD` trigger is stored as written.

use crate::error::{DockerfileError, ErrorCode};
use crate::instruction::{
    AddInstr, ArgDecl, CopyInstr, Dockerfile, Heredoc, Instruction, InstructionKind, RunMount,
};
use crate::shell::{ExpandError, expand, expand_heredoc, expand_words};

type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Instruction {
    /// The instruction with its operands expanded as Docker expands them,
    /// `vars` giving the build arguments and environment in effect (`ENV`
    /// over `ARG`, as in Docker). Values in one `ENV` or `LABEL` all see
    /// the variables as they were before the instruction.
    pub fn expanded(&self, escape: char, vars: Vars<'_>) -> Result<InstructionKind, ExpandError> {
        let one = |word: &str| expand(word, escape, vars);
        let opt = |word: &Option<String>| word.as_deref().map(one).transpose();
        let heredocs = |docs: &[Heredoc]| -> Result<Vec<Heredoc>, ExpandError> {
            docs.iter()
                .map(|doc| {
                    let mut doc = doc.clone();
                    if doc.expand {
                        doc.content = expand_heredoc(&doc.content, vars)?;
                    }
                    Ok(doc)
                })
                .collect()
        };
        let pairs = |pairs: &[(String, String)]| -> Result<Vec<(String, String)>, ExpandError> {
            pairs.iter().map(|(k, v)| Ok((one(k)?, one(v)?))).collect()
        };
        Ok(match &self.kind {
            InstructionKind::Run {
                command,
                heredocs,
                mounts,
                network,
            } => InstructionKind::Run {
                command: command.clone(),
                heredocs: heredocs.clone(),
                mounts: mounts
                    .iter()
                    .map(|m| expand_mount(m, &one, &opt))
                    .collect::<Result<_, _>>()?,
                network: *network,
            },
            InstructionKind::Copy(copy) => InstructionKind::Copy(CopyInstr {
                sources: copy
                    .sources
                    .iter()
                    .map(|s| one(s))
                    .collect::<Result<_, _>>()?,
                dest: one(&copy.dest)?,
                from: opt(&copy.from)?,
                from_span: copy.from_span.clone(),
                chown: opt(&copy.chown)?,
                chmod: opt(&copy.chmod)?,
                link: copy.link,
                heredocs: heredocs(&copy.heredocs)?,
            }),
            InstructionKind::Add(add) => InstructionKind::Add(AddInstr {
                sources: add
                    .sources
                    .iter()
                    .map(|s| one(s))
                    .collect::<Result<_, _>>()?,
                dest: one(&add.dest)?,
                chown: opt(&add.chown)?,
                chmod: opt(&add.chmod)?,
                link: add.link,
                checksum: opt(&add.checksum)?,
                heredocs: heredocs(&add.heredocs)?,
            }),
            InstructionKind::Env(env) => InstructionKind::Env(pairs(env)?),
            InstructionKind::Label(labels) => InstructionKind::Label(pairs(labels)?),
            InstructionKind::Arg(decls) => InstructionKind::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            name: d.name.clone(),
                            default: opt(&d.default)?,
                        })
                    })
                    .collect::<Result<_, ExpandError>>()?,
            ),
            InstructionKind::Workdir(w) => InstructionKind::Workdir(one(w)?),
            InstructionKind::User(u) => InstructionKind::User(one(u)?),
            InstructionKind::StopSignal(s) => InstructionKind::StopSignal(one(s)?),
            InstructionKind::Expose(ports) => {
                let mut out = Vec::new();
                for port in ports {
                    out.extend(expand_words(port, escape, vars)?);
                }
                InstructionKind::Expose(out)
            }
            InstructionKind::Volume(paths) => {
                InstructionKind::Volume(paths.iter().map(|p| one(p)).collect::<Result<_, _>>()?)
            }
            other => other.clone(),
        })
    }
}

type ExpandOne<'a> = &'a dyn Fn(&str) -> Result<String, ExpandError>;
type ExpandOpt<'a> = &'a dyn Fn(&Option<String>) -> Result<Option<String>, ExpandError>;

fn expand_mount(
    mount: &RunMount,
    one: ExpandOne<'_>,
    opt: ExpandOpt<'_>,
) -> Result<RunMount, ExpandError> {
    Ok(match mount {
        RunMount::Bind {
            target,
            source,
            from,
            readwrite,
        } => RunMount::Bind {
            target: one(target)?,
            source: opt(source)?,
            from: opt(from)?,
            readwrite: *readwrite,
        },
        RunMount::Cache {
            target,
            id,
            sharing,
            from,
            source,
            mode,
            uid,
            gid,
            readonly,
        } => RunMount::Cache {
            target: one(target)?,
            id: one(id)?,
            sharing: *sharing,
            from: opt(from)?,
            source: opt(source)?,
            mode: opt(mode)?,
            uid: opt(uid)?,
            gid: opt(gid)?,
            readonly: *readonly,
        },
        RunMount::Tmpfs { target, size } => RunMount::Tmpfs {
            target: one(target)?,
            size: opt(size)?,
        },
        RunMount::Secret {
            id,
            target,
            required,
            mode,
            uid,
            gid,
            env,
        } => RunMount::Secret {
            id: one(id)?,
            target: opt(target)?,
            required: *required,
            mode: opt(mode)?,
            uid: opt(uid)?,
            gid: opt(gid)?,
            env: opt(env)?,
        },
    })
}

impl Dockerfile {
    /// [`Instruction::expanded`] with this Dockerfile's escape character; a
    /// failure is a diagnostic at the instruction.
    pub fn expand_instruction(
        &self,
        instruction: &Instruction,
        vars: Vars<'_>,
    ) -> Result<InstructionKind, DockerfileError> {
        instruction.expanded(self.escape, vars).map_err(|e| {
            DockerfileError::new(
                ErrorCode::BadExpansion,
                e.to_string(),
                &self.name,
                &self.source,
                instruction.span.clone(),
            )
            .with_label("in this instruction")
            .with_help("check the `${...}` forms and the quotes of this instruction")
        })
    }
}
