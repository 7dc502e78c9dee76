//! From text to the typed [`Dockerfile`]: directives, logical lines,
//! `parse-dockerfile` for each instruction's structure, then our checks and
//! types on top.

use std::ops::Range;

use parse_dockerfile as pd;

use crate::directives;
use crate::duration::parse_go_duration;
use crate::error::{DockerfileError, ErrorCode, line_start};
use crate::instruction::{
    AddInstr, ArgDecl, Command, CopyInstr, Dockerfile, FromInstr, Healthcheck, Heredoc,
    Instruction, InstructionKind, RunNetwork, Stage,
};
use crate::logical::{self, INSTRUCTIONS, Logical};
use crate::mount::parse_mount;
use crate::shell::split_words;

/// Parses the Dockerfile `source`, read under `name` (used in diagnostics).
pub fn parse(name: &str, source: &str) -> Result<Dockerfile, DockerfileError> {
    let base = if source.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let directives = directives::read(name, source, base)?;
    let escape = directives.escape.as_ref().map_or('\\', |(c, _)| *c);
    let logicals = logical::split(name, source, base, escape)?;
    check_order(name, source, &logicals)?;
    let masked = logical::masked(source, &logicals);
    let cx = Cx {
        name,
        source,
        base,
        escape,
    };
    let parsed = parse_structure(&cx, &masked[base..], &logicals)?;

    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for (logical, instruction) in logicals.iter().zip(&parsed) {
        if let pd::Instruction::From(from) = instruction {
            let stage = cx.stage(logical, from, stages.len())?;
            if let Some(name) = &stage.name
                && let Some(first) = stages.iter().find(|s| s.name.as_ref() == Some(name))
            {
                let span = from
                    .as_
                    .as_ref()
                    .map_or(logical.span.clone(), |(_, n)| cx.span(&n.span));
                return Err(cx
                    .error(
                        ErrorCode::DuplicateStage,
                        format!("duplicate stage name `{name}`"),
                        span,
                    )
                    .with_label("second stage with this name")
                    .with_help(format!(
                        "stage names are case-insensitive; the first `{name}` is on line {}",
                        first.from.line
                    )));
            }
            stages.push(stage);
            continue;
        }
        let converted = cx.instruction(logical, instruction, logical.span.start)?;
        match stages.last_mut() {
            Some(stage) => stage.instructions.push(converted),
            None => match converted.kind {
                InstructionKind::Arg(args) => global_args.extend(args),
                // check_order lets only ARG come before the first FROM.
                _ => {
                    return Err(cx.error(
                        ErrorCode::MissingFrom,
                        "instruction before the first FROM",
                        logical.keyword_span.clone(),
                    ));
                }
            },
        }
    }
    Ok(Dockerfile {
        name: name.to_owned(),
        source: source.to_owned(),
        escape,
        syntax: directives.syntax.map(|(s, _)| s),
        global_args,
        stages,
    })
}

/// Unknown instructions, and `FROM` first (only `ARG` may come before it).
fn check_order(name: &str, source: &str, logicals: &[Logical]) -> Result<(), DockerfileError> {
    let mut seen_from = false;
    for logical in logicals {
        if !INSTRUCTIONS.contains(&logical.keyword.as_str()) {
            let written = &source[logical.keyword_span.clone()];
            let closest = INSTRUCTIONS
                .iter()
                .map(|known| (strsim::osa_distance(known, &logical.keyword), *known))
                .min()
                .filter(|(distance, _)| *distance <= 2);
            let help = match closest {
                Some((_, known)) => format!("did you mean `{known}`?"),
                None => format!("Dockerfile instructions are {}", INSTRUCTIONS.join(", ")),
            };
            return Err(DockerfileError::new(
                ErrorCode::UnknownInstruction,
                format!("unknown instruction `{written}`"),
                name,
                source,
                logical.keyword_span.clone(),
            )
            .with_label("not an instruction")
            .with_help(help));
        }
        match logical.keyword.as_str() {
            "FROM" => seen_from = true,
            "ARG" => {}
            _ if !seen_from => {
                return Err(DockerfileError::new(
                    ErrorCode::MissingFrom,
                    format!("`{}` comes before the first FROM", logical.keyword),
                    name,
                    source,
                    logical.keyword_span.clone(),
                )
                .with_label("no stage yet")
                .with_help(
                    "a Dockerfile starts with `FROM <image>`; only ARG may come before it",
                ));
            }
            _ => {}
        }
    }
    if !seen_from {
        let span = logicals.first().map_or(0..0, |l| l.keyword_span.clone());
        return Err(DockerfileError::new(
            ErrorCode::MissingFrom,
            "the Dockerfile has no FROM instruction",
            name,
            source,
            span,
        )
        .with_help("a Dockerfile starts with `FROM <image>` (or `FROM scratch`)"));
    }
    Ok(())
}

/// Runs `parse-dockerfile` on the masked text, one instruction per logical line.
fn parse_structure<'a>(
    cx: &Cx<'_>,
    text: &'a str,
    logicals: &[Logical],
) -> Result<Vec<pd::Instruction<'a>>, DockerfileError> {
    let map_error = |error: pd::Error| {
        let message = format!("{error:#}");
        let line = error.line().max(1);
        let start = line_start(cx.source, line);
        let end = cx.source[start..]
            .find('\n')
            .map_or(cx.source.len(), |i| start + i);
        let code = if message.contains("JSON") {
            ErrorCode::BadJson
        } else if message.contains("ONBUILD") {
            ErrorCode::BadOnbuild
        } else if message.contains("HEALTHCHECK") {
            ErrorCode::BadHealthcheck
        } else if message.contains("argument") {
            ErrorCode::BadArgument
        } else {
            ErrorCode::Syntax
        };
        let content = cx.source[start..end].trim_end();
        let indent = content.len() - content.trim_start().len();
        cx.error(code, message, start + indent..start + content.len())
    };
    let iter = pd::parse_iter(text).map_err(map_error)?;
    let mut out = Vec::with_capacity(logicals.len());
    for item in iter {
        out.push(item.map_err(map_error)?);
    }
    if out.len() != logicals.len() {
        let at = logicals.get(out.len()).map_or(0..0, |l| l.span.clone());
        return Err(cx.error(ErrorCode::Syntax, "cannot read this instruction", at));
    }
    for (logical, instruction) in logicals.iter().zip(&out) {
        if keyword_span(instruction).map(|s| cx.span(&s).start) != Some(logical.keyword_span.start)
        {
            return Err(cx.error(
                ErrorCode::Syntax,
                "cannot read this instruction",
                logical.span.clone(),
            ));
        }
    }
    Ok(out)
}

fn keyword_span(instruction: &pd::Instruction<'_>) -> Option<Range<usize>> {
    Some(match instruction {
        pd::Instruction::Add(i) => i.add.span.clone(),
        pd::Instruction::Arg(i) => i.arg.span.clone(),
        pd::Instruction::Cmd(i) => i.cmd.span.clone(),
        pd::Instruction::Copy(i) => i.copy.span.clone(),
        pd::Instruction::Entrypoint(i) => i.entrypoint.span.clone(),
        pd::Instruction::Env(i) => i.env.span.clone(),
        pd::Instruction::Expose(i) => i.expose.span.clone(),
        pd::Instruction::From(i) => i.from.span.clone(),
        pd::Instruction::Healthcheck(i) => i.healthcheck.span.clone(),
        pd::Instruction::Label(i) => i.label.span.clone(),
        pd::Instruction::Maintainer(i) => i.maintainer.span.clone(),
        pd::Instruction::Onbuild(i) => i.onbuild.span.clone(),
        pd::Instruction::Run(i) => i.run.span.clone(),
        pd::Instruction::Shell(i) => i.shell.span.clone(),
        pd::Instruction::Stopsignal(i) => i.stopsignal.span.clone(),
        pd::Instruction::User(i) => i.user.span.clone(),
        pd::Instruction::Volume(i) => i.volume.span.clone(),
        pd::Instruction::Workdir(i) => i.workdir.span.clone(),
        _ => return None,
    })
}

/// What every conversion needs: the text, and where the parser's offsets start.
struct Cx<'a> {
    name: &'a str,
    source: &'a str,
    /// The parser saw the text from here (after a byte order mark).
    base: usize,
    escape: char,
}

/// The flags of one instruction, checked against what it takes.
struct Flags<'f, 'a> {
    flags: Vec<&'f pd::Flag<'a>>,
}

impl Cx<'_> {
    fn span(&self, span: &Range<usize>) -> Range<usize> {
        span.start + self.base..span.end + self.base
    }

    fn error(
        &self,
        code: ErrorCode,
        message: impl Into<String>,
        span: Range<usize>,
    ) -> DockerfileError {
        DockerfileError::new(code, message, self.name, self.source, span)
    }

    fn flag_span(&self, flag: &pd::Flag<'_>) -> Range<usize> {
        self.span(&flag.span())
    }

    /// Checks the flags of `instruction` against `takes`; `refused` are
    /// flags Docker has that servin does not implement, with the reason.
    fn flags<'f, 'a>(
        &self,
        instruction: &str,
        flags: &'f [pd::Flag<'a>],
        takes: &[&str],
        refused: &[(&str, &str)],
    ) -> Result<Flags<'f, 'a>, DockerfileError> {
        let mut seen: Vec<&str> = Vec::new();
        for flag in flags {
            let name = flag.name.value.as_ref();
            if let Some((_, why)) = refused.iter().find(|(n, _)| *n == name) {
                return Err(self
                    .error(
                        ErrorCode::UnknownFlag,
                        format!("servin does not support `{instruction} --{name}`"),
                        self.flag_span(flag),
                    )
                    .with_label("not supported")
                    .with_help((*why).to_owned()));
            }
            if !takes.contains(&name) {
                let list = takes.iter().map(|t| format!("--{t}")).collect::<Vec<_>>();
                let help = if list.is_empty() {
                    format!("{instruction} takes no flags")
                } else {
                    format!("{instruction} takes {}", list.join(", "))
                };
                return Err(self
                    .error(
                        ErrorCode::UnknownFlag,
                        format!("unknown flag `--{name}` for {instruction}"),
                        self.flag_span(flag),
                    )
                    .with_label("unknown flag")
                    .with_help(help));
            }
            if name != "mount" && seen.contains(&name) {
                return Err(self
                    .error(
                        ErrorCode::BadFlagValue,
                        format!("`--{name}` is given twice"),
                        self.flag_span(flag),
                    )
                    .with_help(format!("give `--{name}` once")));
            }
            seen.push(name);
        }
        Ok(Flags {
            flags: flags.iter().collect(),
        })
    }

    fn string_flag(
        &self,
        flags: &Flags<'_, '_>,
        name: &str,
    ) -> Result<Option<String>, DockerfileError> {
        let Some(flag) = flags.flags.iter().find(|f| f.name.value == name) else {
            return Ok(None);
        };
        match &flag.value {
            Some(value) if !value.value.is_empty() => Ok(Some(value.value.to_string())),
            _ => Err(self
                .error(
                    ErrorCode::BadFlagValue,
                    format!("`--{name}` needs a value"),
                    self.flag_span(flag),
                )
                .with_help(format!("write `--{name}=VALUE`"))),
        }
    }

    fn bool_flag(&self, flags: &Flags<'_, '_>, name: &str) -> Result<bool, DockerfileError> {
        let Some(flag) = flags.flags.iter().find(|f| f.name.value == name) else {
            return Ok(false);
        };
        match flag
            .value
            .as_ref()
            .map(|v| v.value.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(self
                .error(
                    ErrorCode::BadFlagValue,
                    format!("`--{name}` takes true or false, not `{other}`"),
                    self.flag_span(flag),
                )
                .with_help(format!("write `--{name}` or `--{name}=false`"))),
        }
    }

    fn chmod_flag(&self, flags: &Flags<'_, '_>) -> Result<Option<String>, DockerfileError> {
        let value = self.string_flag(flags, "chmod")?;
        if let Some(mode) = &value
            && !mode.contains('$')
            && (mode.len() > 4 || !mode.chars().all(|c| ('0'..='7').contains(&c)))
        {
            let span = flags
                .flags
                .iter()
                .find(|f| f.name.value == "chmod")
                .map_or(0..0, |f| self.flag_span(f));
            return Err(self
                .error(
                    ErrorCode::BadFlagValue,
                    format!("`--chmod={mode}` is not an octal file mode"),
                    span,
                )
                .with_label("bad mode")
                .with_help("write the mode in octal, e.g. `--chmod=755`"));
        }
        Ok(value)
    }

    fn stage(
        &self,
        logical: &Logical,
        from: &pd::FromInstruction<'_>,
        index: usize,
    ) -> Result<Stage, DockerfileError> {
        let flags = self.flags("FROM", &from.options, &["platform"], &[])?;
        let platform = self.string_flag(&flags, "platform")?;
        let name = match &from.as_ {
            Some((_, name)) => {
                let lower = name.value.to_ascii_lowercase();
                let valid = lower.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && lower.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
                    });
                if !valid {
                    return Err(self
                        .error(ErrorCode::BadArgument, format!("invalid stage name `{}`", name.value), self.span(&name.span))
                        .with_label("stage name")
                        .with_help("a stage name starts with a letter and holds letters, digits, `-`, `_` and `.`"));
                }
                Some(lower)
            }
            None => None,
        };
        Ok(Stage {
            index,
            name,
            from: FromInstr {
                image: from.image.value.to_string(),
                image_span: self.span(&from.image.span),
                platform,
                span: logical.span.clone(),
                line: logical.line,
            },
            instructions: Vec::new(),
        })
    }

    fn command(
        &self,
        logical: &Logical,
        command: &pd::Command<'_>,
    ) -> Result<Command, DockerfileError> {
        Ok(match command {
            pd::Command::Exec(words) => {
                Command::Exec(words.value.iter().map(|w| w.value.to_string()).collect())
            }
            pd::Command::Shell(text) => {
                let mut start = self.span(&text.span).start;
                // The parser saw `<<` blanked out: start at the marker.
                for heredoc in &logical.heredocs {
                    if heredoc.marker.start < start && start <= heredoc.marker.end {
                        start = heredoc.marker.start;
                    }
                }
                Command::Shell(logical.joined_from(self.source, start).trim().to_owned())
            }
            _ => {
                return Err(self.error(
                    ErrorCode::Syntax,
                    "cannot read this command",
                    logical.span.clone(),
                ));
            }
        })
    }

    fn heredocs(logical: &Logical) -> Vec<Heredoc> {
        logical
            .heredocs
            .iter()
            .map(|h| Heredoc {
                name: h.name.clone(),
                content: h.content.clone(),
                expand: h.expand,
                strip_tabs: h.strip_tabs,
                span: h.marker.clone(),
            })
            .collect()
    }

    /// Sources of COPY/ADD: paths, and the words that are here-document markers.
    fn sources(&self, logical: &Logical, src: &[pd::Source<'_>]) -> (Vec<String>, Vec<Heredoc>) {
        let all = Self::heredocs(logical);
        let mut paths = Vec::new();
        let mut heredocs = Vec::new();
        for source in src {
            match source {
                pd::Source::Path(path) => {
                    let start = self.span(&path.span).start;
                    match logical.heredocs.iter().position(|h| h.after_lt == start) {
                        Some(i) => heredocs.push(all[i].clone()),
                        None => paths.push(path.value.to_string()),
                    }
                }
                pd::Source::HereDoc(doc) => {
                    // Not reached: markers are blanked before parsing. Kept
                    // so a here-document is never silently dropped.
                    heredocs.push(Heredoc {
                        name: String::new(),
                        content: doc.value.to_string(),
                        expand: doc.expand,
                        strip_tabs: false,
                        span: self.span(&doc.span),
                    });
                }
                _ => {}
            }
        }
        (paths, heredocs)
    }

    fn instruction(
        &self,
        logical: &Logical,
        instruction: &pd::Instruction<'_>,
        start: usize,
    ) -> Result<Instruction, DockerfileError> {
        let kind = self.kind(logical, instruction)?;
        let original = if start == logical.span.start {
            logical.original(self.source)
        } else {
            logical.joined_from(self.source, start).trim().to_owned()
        };
        Ok(Instruction {
            span: start..logical.span.end,
            line: logical.line,
            original,
            kind,
        })
    }

    /// Docker reads `--flag` words after every instruction and refuses
    /// those the instruction does not take; the parser reads flags only for
    /// the instructions that have some, so the others are checked here.
    fn no_flags(
        &self,
        logical: &Logical,
        keyword_end: usize,
        keyword: &str,
    ) -> Result<(), DockerfileError> {
        let rest = &self.source[keyword_end..logical.span.end];
        let trimmed = rest.trim_start_matches([' ', '\t']);
        let Some(flag) = trimmed.strip_prefix("--") else {
            return Ok(());
        };
        if !flag.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Ok(());
        }
        let start = keyword_end + (rest.len() - trimmed.len());
        let len = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let name = flag[..len - 2].split('=').next().unwrap_or_default();
        Err(self
            .error(
                ErrorCode::UnknownFlag,
                format!("unknown flag `--{name}` for {keyword}"),
                start..start + len,
            )
            .with_label("unknown flag")
            .with_help(format!("{keyword} takes no flags")))
    }

    fn kind(
        &self,
        logical: &Logical,
        instruction: &pd::Instruction<'_>,
    ) -> Result<InstructionKind, DockerfileError> {
        if let Some(span) = keyword_span(instruction) {
            let span = self.span(&span);
            let keyword = self.source[span.clone()].to_ascii_uppercase();
            if !matches!(
                keyword.as_str(),
                "FROM" | "RUN" | "COPY" | "ADD" | "HEALTHCHECK" | "ONBUILD"
            ) {
                self.no_flags(logical, span.end, &keyword)?;
            }
        }
        Ok(match instruction {
            pd::Instruction::Run(run) => {
                let flags = self.flags(
                    "RUN",
                    &run.options,
                    &["mount", "network"],
                    &[
                        (
                            "security",
                            "servin runs every build step with the default confinement",
                        ),
                        ("device", "servin does not pass devices into build steps"),
                    ],
                )?;
                let mut mounts = Vec::new();
                for flag in flags.flags.iter().filter(|f| f.name.value == "mount") {
                    let value = flag
                        .value
                        .as_ref()
                        .map(|v| v.value.to_string())
                        .unwrap_or_default();
                    let mount = parse_mount(&value).map_err(|(message, help)| {
                        self.error(ErrorCode::BadMount, message, self.flag_span(flag))
                            .with_label("this mount")
                            .with_help(help)
                    })?;
                    mounts.push(mount);
                }
                let network = match self.string_flag(&flags, "network")?.as_deref() {
                    None | Some("default") => RunNetwork::Default,
                    Some("none") => RunNetwork::None,
                    Some("host") => RunNetwork::Host,
                    Some(other) => {
                        let span = flags
                            .flags
                            .iter()
                            .find(|f| f.name.value == "network")
                            .map_or(0..0, |f| self.flag_span(f));
                        return Err(self
                            .error(
                                ErrorCode::BadFlagValue,
                                format!("unknown network `{other}` for RUN"),
                                span,
                            )
                            .with_label("bad network")
                            .with_help("`--network` is default, none or host"));
                    }
                };
                let command = self.command(logical, &run.arguments)?;
                if matches!(&command, Command::Shell(s) if s.is_empty())
                    || matches!(&command, Command::Exec(a) if a.is_empty())
                {
                    return Err(self
                        .error(
                            ErrorCode::BadArgument,
                            "RUN needs a command",
                            logical.keyword_span.clone(),
                        )
                        .with_help("write `RUN <command>`"));
                }
                InstructionKind::Run {
                    command,
                    heredocs: Self::heredocs(logical),
                    mounts,
                    network,
                }
            }
            pd::Instruction::Copy(copy) => {
                let flags = self.flags(
                    "COPY",
                    &copy.options,
                    &["from", "chown", "chmod", "link"],
                    &[
                        ("parents", "`--parents` is a labs feature servin does not implement; copy each folder"),
                        ("exclude", "`--exclude` is a labs feature servin does not implement; use .dockerignore"),
                    ],
                )?;
                let (sources, heredocs) = self.sources(logical, &copy.src);
                let from_span = flags
                    .flags
                    .iter()
                    .find(|f| f.name.value == "from")
                    .map(|f| self.flag_span(f));
                InstructionKind::Copy(CopyInstr {
                    sources,
                    dest: copy.dest.value.to_string(),
                    from: self.string_flag(&flags, "from")?,
                    from_span,
                    chown: self.string_flag(&flags, "chown")?,
                    chmod: self.chmod_flag(&flags)?,
                    link: self.bool_flag(&flags, "link")?,
                    heredocs,
                })
            }
            pd::Instruction::Add(add) => {
                let flags = self.flags(
                    "ADD",
                    &add.options,
                    &["chown", "chmod", "link", "checksum"],
                    &[
                        ("keep-git-dir", "servin's ADD does not fetch git repositories"),
                        ("exclude", "`--exclude` is a labs feature servin does not implement; use .dockerignore"),
                        ("unpack", "servin's ADD unpacks local archives and never remote ones"),
                    ],
                )?;
                let checksum = self.string_flag(&flags, "checksum")?;
                if let Some(sum) = &checksum
                    && !sum.contains('$')
                    && !valid_digest(sum)
                {
                    let span = flags
                        .flags
                        .iter()
                        .find(|f| f.name.value == "checksum")
                        .map_or(0..0, |f| self.flag_span(f));
                    return Err(self
                        .error(
                            ErrorCode::BadFlagValue,
                            format!("`--checksum={sum}` is not a digest"),
                            span,
                        )
                        .with_help("write `--checksum=sha256:<64 hex digits>`"));
                }
                let (sources, heredocs) = self.sources(logical, &add.src);
                if checksum.is_some() {
                    let local = sources
                        .iter()
                        .find(|s| !s.contains("://") && !s.starts_with("git@") && !s.contains('$'));
                    if local.is_some() || !heredocs.is_empty() {
                        let span = flags
                            .flags
                            .iter()
                            .find(|f| f.name.value == "checksum")
                            .map_or(0..0, |f| self.flag_span(f));
                        return Err(self
                            .error(
                                ErrorCode::BadFlagValue,
                                "`--checksum` applies only to URL sources",
                                span,
                            )
                            .with_label("checksum")
                            .with_help(format!(
                                "`{}` is a local source; drop --checksum or add only URLs",
                                local.map_or("<<", String::as_str)
                            )));
                    }
                }
                InstructionKind::Add(AddInstr {
                    sources,
                    dest: add.dest.value.to_string(),
                    chown: self.string_flag(&flags, "chown")?,
                    chmod: self.chmod_flag(&flags)?,
                    link: self.bool_flag(&flags, "link")?,
                    checksum,
                    heredocs,
                })
            }
            pd::Instruction::Env(env) => {
                InstructionKind::Env(self.name_values("ENV", &env.arguments)?)
            }
            pd::Instruction::Label(label) => {
                InstructionKind::Label(self.name_values("LABEL", &label.arguments)?)
            }
            pd::Instruction::Arg(arg) => {
                let mut decls = Vec::new();
                for word in split_words(&arg.arguments.value, self.escape) {
                    let (name, default) = match word.split_once('=') {
                        Some((name, default)) => (name.to_owned(), Some(default.to_owned())),
                        None => (word.clone(), None),
                    };
                    if name.is_empty() {
                        return Err(self
                            .error(
                                ErrorCode::BadArgument,
                                "ARG names can not be blank",
                                self.span(&arg.arguments.span),
                            )
                            .with_help("write `ARG NAME` or `ARG NAME=default`"));
                    }
                    decls.push(ArgDecl { name, default });
                }
                InstructionKind::Arg(decls)
            }
            pd::Instruction::Workdir(w) => InstructionKind::Workdir(w.arguments.value.to_string()),
            pd::Instruction::User(u) => InstructionKind::User(u.arguments.value.to_string()),
            pd::Instruction::Stopsignal(s) => {
                InstructionKind::StopSignal(s.arguments.value.to_string())
            }
            pd::Instruction::Maintainer(m) => InstructionKind::Maintainer(m.name.value.to_string()),
            pd::Instruction::Cmd(c) => InstructionKind::Cmd(self.command(logical, &c.arguments)?),
            pd::Instruction::Entrypoint(e) => {
                InstructionKind::Entrypoint(self.command(logical, &e.arguments)?)
            }
            pd::Instruction::Expose(e) => {
                InstructionKind::Expose(e.arguments.iter().map(|w| w.value.to_string()).collect())
            }
            pd::Instruction::Volume(v) => InstructionKind::Volume(match &v.arguments {
                pd::JsonOrStringArray::Json(words) => {
                    words.value.iter().map(|w| w.value.to_string()).collect()
                }
                pd::JsonOrStringArray::String(words) => {
                    words.iter().map(|w| w.value.to_string()).collect()
                }
            }),
            pd::Instruction::Shell(s) => {
                if s.arguments.is_empty() {
                    return Err(self
                        .error(
                            ErrorCode::BadJson,
                            "SHELL needs at least one argument",
                            logical.span.clone(),
                        )
                        .with_help("write `SHELL [\"/bin/sh\", \"-c\"]`"));
                }
                InstructionKind::Shell(s.arguments.iter().map(|w| w.value.to_string()).collect())
            }
            pd::Instruction::Healthcheck(h) => {
                InstructionKind::Healthcheck(self.healthcheck(logical, h)?)
            }
            pd::Instruction::Onbuild(onbuild) => {
                let inner = &*onbuild.instruction;
                let inner_span =
                    keyword_span(inner).map_or(logical.span.clone(), |s| self.span(&s));
                let forbidden = match inner {
                    pd::Instruction::From(_) => Some("FROM"),
                    pd::Instruction::Maintainer(_) => Some("MAINTAINER"),
                    pd::Instruction::Onbuild(_) => Some("ONBUILD"),
                    _ => None,
                };
                if let Some(keyword) = forbidden {
                    return Err(self
                        .error(
                            ErrorCode::BadOnbuild,
                            format!("{keyword} isn't allowed as an ONBUILD trigger"),
                            inner_span,
                        )
                        .with_label("not allowed after ONBUILD")
                        .with_help(
                            "ONBUILD takes any instruction except FROM, MAINTAINER and ONBUILD",
                        ));
                }
                let inner = self.instruction(logical, inner, inner_span.start)?;
                InstructionKind::OnBuild(Box::new(inner))
            }
            pd::Instruction::From(_) => {
                return Err(self.error(
                    ErrorCode::Syntax,
                    "FROM is not allowed here",
                    logical.span.clone(),
                ));
            }
            _ => {
                return Err(self.error(
                    ErrorCode::UnknownInstruction,
                    "servin does not know this instruction",
                    logical.keyword_span.clone(),
                ));
            }
        })
    }

    /// `ENV`/`LABEL` operands: `k=v ...`, or the old `k v` form (the rest of
    /// the line is the value), as Docker reads them.
    fn name_values(
        &self,
        instruction: &str,
        arguments: &pd::UnescapedString<'_>,
    ) -> Result<Vec<(String, String)>, DockerfileError> {
        let span = self.span(&arguments.span);
        let text = arguments.value.as_ref();
        let words = split_words(text, self.escape);
        let Some(first) = words.first() else {
            return Err(self
                .error(
                    ErrorCode::BadArgument,
                    format!("{instruction} needs at least one argument"),
                    span,
                )
                .with_help(format!("write `{instruction} NAME=VALUE`")));
        };
        if !first.contains('=') {
            let trimmed = text.trim();
            let split_at = trimmed.find(char::is_whitespace);
            let (name, value) = match split_at {
                Some(i) => (&trimmed[..i], trimmed[i..].trim()),
                None => (trimmed, ""),
            };
            if value.is_empty() {
                return Err(self
                    .error(
                        ErrorCode::BadArgument,
                        format!("{instruction} `{name}` has no value"),
                        span,
                    )
                    .with_label("name without a value")
                    .with_help(format!("write `{instruction} {name}=VALUE`")));
            }
            return Ok(vec![(name.to_owned(), value.to_owned())]);
        }
        let mut pairs = Vec::new();
        for word in words {
            let Some((name, value)) = word.split_once('=') else {
                return Err(self
                    .error(
                        ErrorCode::BadArgument,
                        format!("{instruction} `{word}` has no `=`"),
                        self.word_span(&span, &word),
                    )
                    .with_label("no `=`")
                    .with_help("write every pair as NAME=VALUE (quote values holding spaces)"));
            };
            if name.is_empty() {
                return Err(self
                    .error(
                        ErrorCode::BadArgument,
                        format!("{instruction} names can not be blank"),
                        self.word_span(&span, &word),
                    )
                    .with_help("write NAME=VALUE"));
            }
            pairs.push((name.to_owned(), value.to_owned()));
        }
        Ok(pairs)
    }

    /// The span of `word` within `span` (the word's last occurrence, as a
    /// bad word is usually the last one written), or all of `span`.
    fn word_span(&self, span: &Range<usize>, word: &str) -> Range<usize> {
        match self.source[span.clone()].rfind(word) {
            Some(i) if !word.is_empty() => span.start + i..span.start + i + word.len(),
            _ => span.clone(),
        }
    }

    fn healthcheck(
        &self,
        logical: &Logical,
        h: &pd::HealthcheckInstruction<'_>,
    ) -> Result<Healthcheck, DockerfileError> {
        let flags = self.flags(
            "HEALTHCHECK",
            &h.options,
            &[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ],
            &[],
        )?;
        let command = match &h.arguments {
            pd::HealthcheckArguments::Cmd { arguments, .. } => self.command(logical, arguments)?,
            pd::HealthcheckArguments::None { .. } => return Ok(Healthcheck::None),
            _ => {
                return Err(self.error(
                    ErrorCode::BadHealthcheck,
                    "HEALTHCHECK needs CMD or NONE",
                    logical.span.clone(),
                ));
            }
        };
        let duration = |name: &str| -> Result<Option<std::time::Duration>, DockerfileError> {
            let Some(flag) = flags.flags.iter().find(|f| f.name.value == name) else {
                return Ok(None);
            };
            let value = flag
                .value
                .as_ref()
                .map(|v| v.value.to_string())
                .unwrap_or_default();
            let bad = |message: String| {
                self.error(ErrorCode::BadHealthcheck, message, self.flag_span(flag))
                    .with_label("bad duration")
                    .with_help("write a duration such as `30s`, `1m30s` or `500ms`")
            };
            let parsed = parse_go_duration(&value).map_err(|e| bad(format!("--{name}: {e}")))?;
            if !parsed.is_zero() && parsed < std::time::Duration::from_millis(1) {
                return Err(bad(format!("--{name} cannot be less than 1ms")));
            }
            Ok(Some(parsed))
        };
        let retries = match flags.flags.iter().find(|f| f.name.value == "retries") {
            None => None,
            Some(flag) => {
                let value = flag
                    .value
                    .as_ref()
                    .map(|v| v.value.to_string())
                    .unwrap_or_default();
                let parsed: i64 = value.parse().map_err(|_| {
                    self.error(
                        ErrorCode::BadHealthcheck,
                        format!("--retries `{value}` is not a number"),
                        self.flag_span(flag),
                    )
                    .with_help("write a count, e.g. `--retries=3`")
                })?;
                if parsed < 0 {
                    return Err(self
                        .error(
                            ErrorCode::BadHealthcheck,
                            "--retries cannot be negative",
                            self.flag_span(flag),
                        )
                        .with_help("write a count, e.g. `--retries=3`"));
                }
                Some(u32::try_from(parsed).map_err(|_| {
                    self.error(
                        ErrorCode::BadHealthcheck,
                        format!("--retries `{value}` is too large"),
                        self.flag_span(flag),
                    )
                })?)
            }
        };
        Ok(Healthcheck::Cmd {
            command,
            interval: duration("interval")?,
            timeout: duration("timeout")?,
            start_period: duration("start-period")?,
            start_interval: duration("start-interval")?,
            retries,
        })
    }
}

/// `algorithm:hex` with a known algorithm and the right length.
fn valid_digest(text: &str) -> bool {
    let Some((algorithm, hex)) = text.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}
