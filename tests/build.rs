//! `servin build` against a real engine: every `RUN` in a real container,
//! layers from overlay upper folders, the step cache, the context sent
//! incrementally.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use support::sandbox::Env;

const BASE: &str = "localhost/buildbase:1";

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// `servin run --rm IMAGE sh -c SCRIPT`'s output.
fn run_in(env: &Env, image: &str, script: &str) -> String {
    env.ok(&["run", "--rm", image, "sh", "-c", script])
}

#[test]
fn multi_stage_build_with_args_user_workdir_and_copy_from() {
    let env = Env::with_image(BASE);
    let ctx = env.dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                &format!(
                    "ARG BASE={BASE}\n\
                     FROM $BASE AS builder\n\
                     ARG GREETING=hello\n\
                     ENV WHO=world\n\
                     WORKDIR /work\n\
                     COPY src/ ./src/\n\
                     RUN echo \"$GREETING $WHO\" > out.txt && cat src/a.txt >> out.txt\n\
                     RUN rm src/a.txt\n\
                     \n\
                     FROM $BASE\n\
                     COPY --from=builder /work/out.txt /srv/result.txt\n\
                     COPY --from=builder /work/src /srv/src\n\
                     USER 1000:1000\n\
                     WORKDIR /srv\n\
                     CMD [\"cat\", \"result.txt\"]\n"
                ),
            ),
            ("src/a.txt", "from a\n"),
            ("src/b.txt", "from b\n"),
        ],
    );
    let out = env.run(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "localhost/multi:1",
        "--build-arg",
        "GREETING=hi",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let said = env.ok(&["run", "--rm", "localhost/multi:1"]);
    assert_eq!(said, "hi world\nfrom a\n");
    let seen = run_in(&env, "localhost/multi:1", "id -u; pwd; ls /srv/src");
    assert_eq!(seen, "1000\n/srv\nb.txt\n");
}
