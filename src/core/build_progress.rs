//! How far an image build has got, read from the lines the build prints: the Docker builder's
//! `Step k/n : …`, apt's package counts inside a step (`N newly installed`, then `Unpacking X` and
//! `Setting up X` once per package), and mmdebstrap's `I: …` phases for the base image. Pure, so that
//! the dashboard's detail line and the headless output can be tested against fixture lines.

use crate::core::text::duration_whole;

/// Width of the package bar in cells.
const BAR_CELLS: usize = 10;

/// Progress of one build. Invariant: `packages.done <= 2 * packages.total` (each package is unpacked,
/// then set up); counts reset when a new step or phase starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildProgress {
    /// `(k, n)` of the Docker builder's `Step k/n`.
    pub step: Option<(u32, u32)>,
    /// What the current step or phase does (`RUN apt-get install …`, `mmdebstrap: extracting archives`).
    pub phase: String,
    /// apt's work in the current step, once apt has said how many packages it installs.
    pub packages: Option<Packages>,
    /// How long the previous build of this image took, when one was recorded.
    pub last_build_ms: Option<u64>,
}

/// apt's count of the packages of one step: each is unpacked, then set up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Packages {
    pub total: u32,
    pub unpacked: u32,
    pub set_up: u32,
}

/// What a line changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing that is shown.
    None,
    /// Progress within the current step (a package count).
    Within,
    /// A new step or phase began: worth one line in a log.
    Step,
}

impl BuildProgress {
    /// Takes one line of build output into account.
    pub fn observe(&mut self, line: &str) -> Change {
        let line = line.trim();
        if let Some((k, n, what)) = docker_step(line) {
            self.step = Some((k, n));
            self.phase = what.to_string();
            self.packages = None;
            return Change::Step;
        }
        if line.starts_with("building image ") || line.starts_with("building base image ") {
            // The backend's own announcement of each image it builds (base, then profile).
            *self = BuildProgress {
                phase: line.to_string(),
                last_build_ms: self.last_build_ms,
                ..BuildProgress::default()
            };
            return Change::Step;
        }
        if let Some(phase) = mmdebstrap_phase(line) {
            self.phase = format!("base image: {phase}");
            self.packages = None;
            return Change::Step;
        }
        if let Some(total) = apt_newly_installed(line) {
            self.packages = Some(Packages {
                total,
                ..Packages::default()
            });
            return Change::Within;
        }
        let Some(p) = self.packages.as_mut() else {
            return Change::None;
        };
        if line.starts_with("Unpacking ") && p.unpacked < p.total {
            p.unpacked += 1;
            Change::Within
        } else if line.starts_with("Setting up ") && p.set_up < p.total {
            p.set_up += 1;
            Change::Within
        } else {
            Change::None
        }
    }

    /// One line for a log: `step 3/5: RUN apt-get install …`.
    pub fn step_line(&self) -> String {
        match self.step {
            Some((k, n)) => format!("step {k}/{n}: {}", self.phase),
            None => self.phase.clone(),
        }
    }

    /// The stage's detail: `step 3/5 · apt ████░░░░░░ 120/310 packages · about 4m left (last build
    /// took 7m50s)`. `elapsed_ms` is how long this build has run.
    pub fn detail(&self, elapsed_ms: u64) -> String {
        let mut parts = Vec::new();
        match self.step {
            Some((k, n)) => parts.push(format!("step {k}/{n}")),
            None if !self.phase.is_empty() => parts.push(self.phase.clone()),
            None => {}
        }
        if let Some(p) = self.packages.filter(|p| p.total > 0) {
            parts.push(p.bar());
        }
        if let Some(last) = self.last_build_ms {
            parts.push(estimate(elapsed_ms, last));
        }
        parts.join(" · ")
    }
}

impl Packages {
    /// `apt ████░░░░░░ 120/310 packages`: the bar counts both passes (unpacking, then setting up);
    /// the number is the pass apt is in.
    fn bar(&self) -> String {
        let total = u64::from(self.total.max(1));
        let done = u64::from(self.unpacked + self.set_up);
        let filled = ((done * BAR_CELLS as u64) / (2 * total)) as usize;
        let filled = filled.min(BAR_CELLS);
        let (verb, count) = if self.set_up > 0 {
            ("set up", self.set_up)
        } else {
            ("unpacked", self.unpacked)
        };
        format!(
            "apt {}{} {count}/{} {verb}",
            "█".repeat(filled),
            "░".repeat(BAR_CELLS - filled),
            self.total
        )
    }
}

/// `about 4m left (last build took 7m50s)`, or, past the last build's time, how long that was.
pub fn estimate(elapsed_ms: u64, last_ms: u64) -> String {
    let last = duration_whole(i64::try_from(last_ms).unwrap_or(i64::MAX));
    if elapsed_ms < last_ms {
        let left = minutes_left(last_ms - elapsed_ms);
        format!("about {left} left (last build took {last})")
    } else {
        format!("longer than the last build ({last})")
    }
}

/// Estimates are rough: whole minutes rounded up (`4m`, `1h02m`), never "0s left" while work remains.
fn minutes_left(ms: u64) -> String {
    let minutes = ms.div_ceil(60_000).max(1);
    if minutes < 60 {
        format!("{minutes}m")
    } else {
        format!("{}h{:02}m", minutes / 60, minutes % 60)
    }
}

/// `Step 2/5 : RUN apt-get …` → `(2, 5, "RUN apt-get …")`.
fn docker_step(line: &str) -> Option<(u32, u32, &str)> {
    let rest = line.strip_prefix("Step ")?;
    let (counts, what) = rest.split_once(':')?;
    let (k, n) = counts.trim().split_once('/')?;
    let (k, n) = (k.parse().ok()?, n.parse().ok()?);
    (k >= 1 && k <= n).then_some((k, n, what.trim()))
}

/// `mmdebstrap: I: extracting archives...` → `extracting archives`.
fn mmdebstrap_phase(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("mmdebstrap: I: ")?;
    Some(rest.trim_end_matches('.').trim())
}

/// `0 upgraded, 310 newly installed, 0 to remove and 0 not upgraded.` → 310.
fn apt_newly_installed(line: &str) -> Option<u32> {
    let (before, _) = line.split_once(" newly installed")?;
    before.rsplit([',', ' ']).next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as the Docker builder (API, without BuildKit) and apt print them, abridged.
    const DOCKER_BUILD: &str = "\
Step 1/4 : FROM mlops-tui/base:bookworm
 ---> 3f1c2a9d0b7e
Step 2/4 : RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-numpy
 ---> Running in 9a8b7c6d5e4f
Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]
Reading package lists...
Building dependency tree...
The following NEW packages will be installed:
  libpython3.11 python3 python3-numpy
0 upgraded, 3 newly installed, 0 to remove and 0 not upgraded.
Need to get 12.3 MB of archives.
Selecting previously unselected package libpython3.11:amd64.
Preparing to unpack .../libpython3.11_3.11.2-6_amd64.deb ...
Unpacking libpython3.11:amd64 (3.11.2-6) ...
Unpacking python3 (3.11.2-1+b1) ...
Unpacking python3-numpy (1:1.24.2-1) ...
Setting up libpython3.11:amd64 (3.11.2-6) ...
Setting up python3 (3.11.2-1+b1) ...
";

    fn fed(text: &str) -> (BuildProgress, Vec<String>) {
        let mut p = BuildProgress::default();
        let mut steps = Vec::new();
        for line in text.lines() {
            if p.observe(line) == Change::Step {
                steps.push(p.step_line());
            }
        }
        (p, steps)
    }

    #[test]
    fn docker_steps_and_apt_packages_are_counted() {
        let (p, steps) = fed(DOCKER_BUILD);
        assert_eq!(
            steps,
            [
                "step 1/4: FROM mlops-tui/base:bookworm",
                "step 2/4: RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-numpy"
            ]
        );
        assert_eq!(p.step, Some((2, 4)));
        assert_eq!(
            p.packages,
            Some(Packages {
                total: 3,
                unpacked: 3,
                set_up: 2
            })
        );
        assert_eq!(p.detail(0), "step 2/4 · apt ████████░░ 2/3 set up");
    }

    #[test]
    fn a_new_step_resets_the_package_count() {
        let (p, _) = fed(&format!("{DOCKER_BUILD}Step 3/4 : COPY . /opt\n"));
        assert_eq!(p.step, Some((3, 4)));
        assert_eq!(p.packages, None);
        assert_eq!(p.detail(0), "step 3/4");
    }

    #[test]
    fn unpacking_beyond_the_announced_count_is_not_counted() {
        let (p, _) = fed("1 upgraded, 1 newly installed, 0 to remove\nUnpacking a\nUnpacking b\n");
        assert_eq!(p.packages.map(|p| p.unpacked), Some(1));
    }

    #[test]
    fn mmdebstrap_phases_are_steps() {
        let (p, steps) = fed(
            "mmdebstrap: I: chroot architecture amd64 is equal to the host's architecture\n\
             mmdebstrap: I: downloading packages with apt...\n\
             mmdebstrap: Get:1 http://deb.debian.org/debian bookworm/main amd64 libc6 [2.8 MB]\n\
             mmdebstrap: I: extracting archives...\n",
        );
        assert_eq!(steps.len(), 3);
        assert_eq!(p.detail(0), "base image: extracting archives");
    }

    #[test]
    fn each_image_of_a_build_is_announced_and_starts_afresh() {
        let (p, steps) = fed(
            "building base image mlops-tui/base:bookworm with: mmdebstrap --variant=apt bookworm -\n\
             mmdebstrap: I: extracting archives...\n\
             import: Loading layer\n\
             building image mlops-tui/numpy:1 from dockerfiles/numpy/Dockerfile\n",
        );
        assert_eq!(steps.len(), 3);
        assert_eq!(
            steps[2],
            "building image mlops-tui/numpy:1 from dockerfiles/numpy/Dockerfile"
        );
        assert_eq!(p.step, None);
    }

    #[test]
    fn the_estimate_comes_from_the_last_build() {
        let p = BuildProgress {
            step: Some((3, 5)),
            last_build_ms: Some(470_000),
            ..BuildProgress::default()
        };
        assert_eq!(
            p.detail(230_000),
            "step 3/5 · about 4m left (last build took 7m50s)"
        );
        assert_eq!(
            p.detail(500_000),
            "step 3/5 · longer than the last build (7m50s)"
        );
    }

    #[test]
    fn lines_that_only_look_like_steps_are_not() {
        let mut p = BuildProgress::default();
        assert_eq!(p.observe("Step 0/3 : nothing"), Change::None);
        assert_eq!(p.observe("Step x/3 : nothing"), Change::None);
        assert_eq!(p.observe("Unpacking foo"), Change::None);
    }
}
