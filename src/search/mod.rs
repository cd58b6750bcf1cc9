//! Architecture search under a query budget: random search, regularized (aging) evolution and
//! predictor-guided search (fit a predictor on what has been evaluated, score many
//! candidates, evaluate the best few, repeat).
//!
//! A search is a sequence of rounds. Each round's proposals depend only on the evaluations of
//! earlier rounds and on a random stream derived from (seed, round), so a search resumed from
//! its journal proposes exactly what the uninterrupted search would have, and skips what was
//! already evaluated.

pub mod bench;
pub mod journal;
pub mod oracle;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::{Result, bail};
use clap::ValueEnum;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::cifar::CifarData;
use crate::model::ModelConfig;
use crate::space::{DynSpace, EncodedArch};
use crate::train::aux::PreparedAux;
use crate::train::{self, TrainConfig};
use journal::{Journal, Record};
use oracle::Oracle;

/// How the next architectures are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Uniform samples of the space.
    Random,
    /// Regularized evolution: tournament selection among the most recent evaluations,
    /// mutation of the winner, the oldest member ages out.
    Evolution,
    /// Fit the predictor on the evaluated architectures, score candidates (the unevaluated
    /// neighbours of the best so far, plus a share of random samples), evaluate the top `k`.
    Predictor,
    /// Predictor-guided search without the predictor: the same candidates, `k` of them in
    /// random order (local search; the baseline that shows what the predictor adds).
    Local,
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Strategy::Random => "random",
            Strategy::Evolution => "evolution",
            Strategy::Predictor => "predictor",
            Strategy::Local => "local",
        };
        f.write_str(name)
    }
}

/// Everything that decides a search's trajectory (saved with the run so it can resume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    pub strategy: Strategy,
    /// Distinct architectures to evaluate (failed evaluations count: the query was spent).
    pub budget: usize,
    pub seed: u64,
    /// Architectures proposed per round by random search and evolution (and evaluated in
    /// parallel by a command oracle).
    pub batch: usize,
    /// Evolution: population size (the most recent evaluations).
    pub population: usize,
    /// Evolution: tournament size.
    pub tournament: usize,
    /// Predictor: random architectures evaluated before the first fit.
    pub initial: usize,
    /// Predictor: candidates scored per round, at most.
    pub candidates: usize,
    /// Predictor: share of the candidates drawn at random from the space (or pool) instead of
    /// from the neighbourhood of the best architecture so far.
    #[serde(default)]
    pub explore: f64,
    /// Predictor: architectures evaluated per round.
    pub top_k: usize,
    /// Predictor: refit only once the evaluated architectures have grown by this fraction
    /// since the last fit (0 = refit every round); the rounds in between reuse the model.
    #[serde(default)]
    pub refit_growth: f64,
}

impl SearchSettings {
    pub fn check(&self) -> Result<()> {
        let positive = [
            ("budget", self.budget),
            ("batch", self.batch),
            ("population", self.population),
            ("tournament", self.tournament),
            ("initial", self.initial),
            ("candidates", self.candidates),
            ("top-k", self.top_k),
        ];
        for (name, v) in positive {
            if v == 0 {
                bail!("--{name} must be at least 1");
            }
        }
        if self.tournament > self.population {
            bail!(
                "--tournament ({}) cannot exceed --population ({})",
                self.tournament,
                self.population
            );
        }
        if !(self.refit_growth >= 0.0 && self.refit_growth.is_finite()) {
            bail!(
                "--refit-growth must be 0 or more, got {}",
                self.refit_growth
            );
        }
        if !(0.0..=1.0).contains(&self.explore) {
            bail!("--explore must be between 0 and 1, got {}", self.explore);
        }
        if self.strategy == Strategy::Predictor && self.initial < 2 {
            bail!("--initial must be at least 2 to fit a predictor");
        }
        Ok(())
    }
}

/// The predictor of predictor-guided search.
pub trait Surrogate {
    /// Train from scratch on the evaluated architectures, replacing any earlier fit. The same
    /// inputs and seed must give the same model (resumed searches refit).
    fn fit(&mut self, evaluated: &[EncodedArch], accuracies: &[f64], seed: u64) -> Result<()>;

    /// Scores of the candidates under the last fit (higher = better).
    fn score(&self, candidates: &[EncodedArch]) -> Result<Vec<f64>>;
}

/// A predictor of this crate as the surrogate, trained from scratch at each refit.
pub struct FitSurrogate<'a> {
    pub model_config: ModelConfig,
    pub train_config: TrainConfig,
    pub space: &'a dyn DynSpace,
    /// CIFAR-10 images for the hypernetwork task of `hypernas` / `hypernas-h`.
    pub images: Option<&'a CifarData>,
    /// Threads for scoring the candidates.
    pub threads: usize,
    /// The last fit.
    pub fitted: Option<train::Fitted>,
}

impl<'a> FitSurrogate<'a> {
    pub fn new(
        model_config: ModelConfig,
        train_config: TrainConfig,
        space: &'a dyn DynSpace,
        images: Option<&'a CifarData>,
        threads: usize,
    ) -> Self {
        Self {
            model_config,
            train_config,
            space,
            images,
            threads,
            fitted: None,
        }
    }
}

impl Surrogate for FitSurrogate<'_> {
    fn fit(&mut self, evaluated: &[EncodedArch], accuracies: &[f64], seed: u64) -> Result<()> {
        let mut config = self.train_config.clone();
        config.seed = seed;
        let prepared = match (&self.model_config.hyper, self.images) {
            (Some(h), Some(_)) => {
                let unlabelled = config.aux.as_ref().map_or(0, |a| a.unlabelled);
                Some(PreparedAux::new(
                    self.space, evaluated, &h.proxy, unlabelled, seed,
                )?)
            }
            _ => None,
        };
        if self.model_config.kind.uses_hypernetwork() && prepared.is_none() {
            bail!(
                "{} needs CIFAR-10 images for its hypernetwork task",
                self.model_config.kind
            );
        }
        let aux = match (&prepared, self.images) {
            (Some(p), Some(images)) => Some(p.data(&images.train)),
            _ => None,
        };
        self.fitted = Some(train::fit(
            &self.model_config,
            &config,
            evaluated,
            accuracies,
            aux.as_ref(),
            None,
        ));
        Ok(())
    }

    fn score(&self, candidates: &[EncodedArch]) -> Result<Vec<f64>> {
        match &self.fitted {
            Some(f) => Ok(f.predict_with_threads(candidates, self.threads.max(1))),
            None => bail!("the predictor is scored before it was fitted"),
        }
    }
}

/// Where candidates come from: the whole space, or only the rows of a table (a table oracle
/// can only answer for those).
pub struct Candidates<'a> {
    space: &'a dyn DynSpace,
    pool: Option<Pool>,
}

/// The architectures of a table, the only ones a table oracle can answer for.
struct Pool {
    /// identity -> canonical string of each member.
    canonical: HashMap<String, String>,
    /// The members' canonical strings, to sample from.
    list: Vec<String>,
    /// Identity of each entry of `list`, and the first entry of each identity.
    identities: Vec<String>,
    index: HashMap<String, usize>,
    /// Flat encodings of the entries of `list`, row-major, to project mutations onto the pool.
    flat: Vec<f32>,
    dim: usize,
    /// Per parent row: all rows ordered by distance from it (memo; see [`Pool::nearest`]).
    by_distance: Mutex<HashMap<usize, DistanceOrder>>,
}

/// (distance from a parent row, row), nearest first.
type DistanceOrder = Arc<Vec<(f32, usize)>>;

/// Dimensions summed between checks against the best distance so far.
const DISTANCE_CHUNK: usize = 16;

/// Parents whose distance orders are kept; a search visits far fewer best architectures.
const DISTANCE_MEMO: usize = 4096;

impl Pool {
    fn new(archs: &[EncodedArch]) -> Self {
        let dim = archs.first().map_or(0, |a| a.flat.len());
        let mut index = HashMap::new();
        for (i, a) in archs.iter().enumerate() {
            index.entry(a.identity.clone()).or_insert(i);
        }
        Self {
            canonical: archs
                .iter()
                .map(|a| (a.identity.clone(), a.canonical.clone()))
                .collect(),
            list: archs.iter().map(|a| a.canonical.clone()).collect(),
            identities: archs.iter().map(|a| a.identity.clone()).collect(),
            index,
            flat: archs.iter().flat_map(|a| a.flat.iter().copied()).collect(),
            dim,
            by_distance: Mutex::new(HashMap::new()),
        }
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.flat[i * self.dim..(i + 1) * self.dim]
    }

    /// L1 distance, or something above `bound` once the partial sum passes it.
    fn distance(a: &[f32], b: &[f32], bound: f32) -> f32 {
        let mut sum = 0.0f32;
        for (x, y) in a.chunks(DISTANCE_CHUNK).zip(b.chunks(DISTANCE_CHUNK)) {
            sum += x.iter().zip(y).map(|(p, q)| (p - q).abs()).sum::<f32>();
            if sum > bound {
                break;
            }
        }
        sum
    }

    /// All rows ordered by distance from row `parent` (ties by row).
    fn order_from(&self, parent: usize) -> DistanceOrder {
        let mut memo = self.by_distance.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(order) = memo.get(&parent) {
            return Arc::clone(order);
        }
        let origin = self.row(parent);
        let mut order: Vec<(f32, usize)> = (0..self.list.len())
            .map(|i| (Self::distance(self.row(i), origin, f32::INFINITY), i))
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let order = Arc::new(order);
        if memo.len() >= DISTANCE_MEMO {
            memo.clear();
        }
        memo.insert(parent, Arc::clone(&order));
        order
    }

    /// The member closest to `child` (L1 distance of the flat encodings; ties drawn at
    /// random), other than `parent` (an identity in the pool).
    ///
    /// Why: a table of a few thousand networks from a space of 10^10 or more holds almost no
    /// one-mutation neighbour of any member, so without this, mutation-based search on such a
    /// table degrades to random sampling.
    ///
    /// Rows are visited by distance from the parent: by the triangle inequality no row farther
    /// from the parent than `best + |child - parent|` can be closer to the child, so the scan
    /// stops there (with a little slack for rounding, so ties are all seen).
    fn nearest(&self, child: &[f32], parent: &str, rng: &mut ChaCha8Rng) -> Option<String> {
        let &p = self.index.get(parent)?;
        if child.len() != self.dim {
            return None;
        }
        let gap = Self::distance(child, self.row(p), f32::INFINITY);
        let mut best: Option<(f32, usize)> = None;
        let mut ties = 0u32;
        for &(from_parent, i) in self.order_from(p).iter() {
            let bound = best.map_or(f32::INFINITY, |(d, _)| d);
            if from_parent - gap > bound + 1e-3 {
                break;
            }
            if self.identities[i] == parent {
                continue;
            }
            let distance = Self::distance(self.row(i), child, bound);
            if distance > bound {
                continue;
            }
            if distance == bound {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some((distance, i));
                }
            } else {
                best = Some((distance, i));
                ties = 1;
            }
        }
        best.map(|(_, i)| self.identities[i].clone())
    }
}

impl<'a> Candidates<'a> {
    pub fn whole_space(space: &'a dyn DynSpace) -> Self {
        Self { space, pool: None }
    }

    /// Only `archs` (their canonical strings); evolution's mutations that leave the pool are
    /// projected onto its nearest member.
    pub fn pool(space: &'a dyn DynSpace, archs: &[EncodedArch]) -> Self {
        Self {
            space,
            pool: Some(Pool::new(archs)),
        }
    }

    fn size(&self) -> Option<usize> {
        self.pool.as_ref().map(|p| p.list.len())
    }

    /// The canonical string and identity of `text`, if it is an allowed architecture.
    fn admit(&self, text: &str) -> Option<(String, String)> {
        let encoded = self.space.encode(text).ok()?;
        self.admit_encoded(encoded)
    }

    fn admit_encoded(&self, encoded: EncodedArch) -> Option<(String, String)> {
        match &self.pool {
            None => Some((encoded.canonical, encoded.identity)),
            Some(pool) => pool
                .canonical
                .get(&encoded.identity)
                .map(|c| (c.clone(), encoded.identity)),
        }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> (String, String) {
        match &self.pool {
            Some(pool) => self
                .admit(pool.list.choose(rng).expect("non-empty pool"))
                .expect("pool members are admitted"),
            None => {
                let text = self.space.sample_string(rng);
                self.admit(&text).expect("sampled architectures are valid")
            }
        }
    }

    /// One random mutation of `parent`, if it is allowed. Not projected onto a table (unlike
    /// [`Candidates::mutate`]): on a sparse table a predictor round then finds no neighbours
    /// and scores random rows, or the whole table, which found better architectures than
    /// projected neighbourhoods on validation seeds (README, "Search on sampled tables").
    fn neighbour(&self, parent: &str, rng: &mut ChaCha8Rng) -> Option<(String, String)> {
        let child = self.space.mutate_string(parent, rng).ok()?;
        self.admit(&child)
    }

    /// A mutation of `parent` for evolution: in a table pool that lacks the mutated network,
    /// the pool member nearest to it (see [`Pool::nearest`]); while that member is in `seen`,
    /// the walk goes on from the mutated network, so evolution keeps moving where a parent's
    /// nearest members are all evaluated. A sample if nothing new turns up.
    fn mutate(
        &self,
        parent: &str,
        seen: &HashSet<String>,
        rng: &mut ChaCha8Rng,
    ) -> (String, String) {
        let parent_identity = self.space.encode(parent).ok().map(|p| p.identity);
        let mut current = parent.to_string();
        for _ in 0..100 {
            let Some(step) = self.step(&current, parent_identity.as_deref(), rng) else {
                break;
            };
            match step.projected_from {
                Some(mutated) if seen.contains(&step.admitted.1) => current = mutated,
                _ => return step.admitted,
            }
        }
        self.sample(rng)
    }

    /// Mutate `from` and admit the result, projecting it onto the pool if needed (never onto
    /// `parent`).
    fn step(&self, from: &str, parent: Option<&str>, rng: &mut ChaCha8Rng) -> Option<Step> {
        let mutated = self.space.mutate_string(from, rng).ok()?;
        let child = self.space.encode(&mutated).ok()?;
        let direct = |child| {
            Some(Step {
                admitted: self.admit_encoded(child)?,
                projected_from: None,
            })
        };
        let Some(pool) = &self.pool else {
            return direct(child);
        };
        if pool.canonical.contains_key(&child.identity) {
            return direct(child);
        }
        let nearest = pool.nearest(&child.flat, parent?, rng)?;
        Some(Step {
            admitted: (pool.canonical[&nearest].clone(), nearest),
            projected_from: Some(mutated),
        })
    }
}

/// One mutation as admitted: the canonical string and identity, and, for a pool member
/// projected from a mutated network outside the pool, that network.
struct Step {
    admitted: (String, String),
    projected_from: Option<String>,
}

/// Progress of a running search, for the command line.
pub trait Progress {
    fn evaluated(&mut self, record: &Record, best: Option<&Record>);
    fn round_started(&mut self, _round: usize, _proposals: usize) {}
}

/// A proposal of one round: canonical architecture and, for predictor rounds, its score.
struct Proposal {
    arch: String,
    identity: String,
    predicted: Option<f64>,
}

/// Rounds in a row without a new architecture after which a search stops early.
const MAX_EMPTY_ROUNDS: usize = 50;

/// Run (or resume) a search until the budget is spent or nothing new can be proposed.
/// `records` are the journal's records so far (empty for a new search).
pub fn run<'s>(
    settings: &SearchSettings,
    candidates: &Candidates,
    oracle: &dyn Oracle,
    surrogate: Option<&mut (dyn Surrogate + 's)>,
    journal: &mut Journal,
    mut records: Vec<Record>,
    progress: &mut dyn Progress,
) -> Result<Vec<Record>> {
    settings.check()?;
    if settings.strategy == Strategy::Predictor && surrogate.is_none() {
        bail!("predictor-guided search needs a predictor");
    }
    let mut surrogate = surrogate;
    let space = candidates.space;
    let identity_of = |arch: &str| space.encode(arch).map(|e| e.identity).ok();
    let mut seen: HashSet<String> = records
        .iter()
        .filter_map(|r| identity_of(&r.arch))
        .collect();
    let mut round = records.iter().map(|r| r.round).max().unwrap_or(0);
    let mut refits = Refits::replay(settings, &records, round);
    let mut empty_rounds = 0;
    while records.len() < settings.budget {
        let before: Vec<Record> = records
            .iter()
            .filter(|r| r.round < round)
            .cloned()
            .collect();
        refits.at_round(round, &before);
        let proposals = propose(
            settings,
            candidates,
            &before,
            round,
            surrogate.as_deref_mut(),
            &mut refits,
        )?;
        let fresh: Vec<Proposal> = proposals
            .into_iter()
            .filter(|p| !seen.contains(&p.identity))
            .take(settings.budget - records.len())
            .collect();
        if fresh.is_empty() {
            empty_rounds += 1;
            // every allowed architecture is evaluated, or the sampler keeps finding only
            // evaluated ones (a space smaller than the budget)
            if candidates.size().is_some_and(|n| seen.len() >= n)
                || empty_rounds >= MAX_EMPTY_ROUNDS
            {
                break;
            }
            round += 1;
            continue;
        }
        empty_rounds = 0;
        progress.round_started(round, fresh.len());
        let predicted: HashMap<String, Option<f64>> = fresh
            .iter()
            .map(|p| (p.arch.clone(), p.predicted))
            .collect();
        let archs: Vec<String> = fresh.iter().map(|p| p.arch.clone()).collect();
        let mut failure = None;
        oracle.evaluate(&archs, &mut |eval| {
            if failure.is_some() {
                return;
            }
            let predicted = predicted.get(&eval.arch).copied().flatten();
            let record = Record::new(records.len() + 1, round, eval, predicted);
            if let Err(e) = journal.append(&record) {
                failure = Some(e);
                return;
            }
            if let Some(id) = identity_of(&record.arch) {
                seen.insert(id);
            }
            records.push(record);
            let best = best_record(&records);
            progress.evaluated(records.last().expect("just pushed"), best);
        });
        if let Some(e) = failure {
            return Err(e);
        }
        round += 1;
    }
    Ok(records)
}

/// The evaluated architecture with the highest accuracy (the earliest on ties).
pub fn best_record(records: &[Record]) -> Option<&Record> {
    best_of(records.iter())
}

/// The successful record with the highest accuracy among `records`, the first on ties.
fn best_of<'r>(records: impl Iterator<Item = &'r Record>) -> Option<&'r Record> {
    records.filter(|r| r.ok_accuracy().is_some()).fold(
        None,
        |best: Option<&Record>, r| match best {
            Some(b) if b.ok_accuracy() >= r.ok_accuracy() => Some(b),
            _ => Some(r),
        },
    )
}

/// The random stream of one round.
fn round_rng(seed: u64, round: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (round as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The seed of a predictor fit made at the start of `round` (its own stream, so that a
/// resumed search can refit without replaying the round's candidate draws).
fn fit_seed(seed: u64, round: usize) -> u64 {
    round_rng(seed ^ 0xF17_5EED, round).random()
}

/// The fit a predictor round uses: made at the start of `round` on the `evaluated`
/// successful evaluations of the earlier rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FitMark {
    round: usize,
    evaluated: usize,
}

/// The refit schedule of predictor-guided search. A pure function of the journal, so a
/// resumed search refits exactly the model the interrupted one was using.
struct Refits {
    growth: f64,
    initial: usize,
    /// The fit the current round uses.
    current: Option<FitMark>,
    /// The fit the surrogate holds.
    loaded: Option<FitMark>,
}

impl Refits {
    /// The schedule as it stood at the start of `round`, from the records of a journal.
    fn replay(settings: &SearchSettings, records: &[Record], round: usize) -> Self {
        let mut refits = Self {
            growth: settings.refit_growth,
            initial: settings.initial,
            current: None,
            loaded: None,
        };
        for r in 0..round {
            let before: Vec<Record> = records.iter().filter(|x| x.round < r).cloned().collect();
            refits.at_round(r, &before);
        }
        refits
    }

    /// Advance to the start of `round`, `before` being the records of the earlier rounds.
    fn at_round(&mut self, round: usize, before: &[Record]) {
        let evaluated = before.iter().filter(|r| r.ok_accuracy().is_some()).count();
        if evaluated < self.initial {
            return; // still the initial random sample
        }
        let due = self.current.is_none_or(|m| {
            evaluated > m.evaluated && evaluated as f64 >= m.evaluated as f64 * (1.0 + self.growth)
        });
        if due {
            self.current = Some(FitMark { round, evaluated });
        }
    }

    /// Make `surrogate` hold the current fit, fitting it on the successful evaluations made
    /// before the fit's round if it does not.
    fn ensure_fitted(
        &mut self,
        surrogate: &mut dyn Surrogate,
        space: &dyn DynSpace,
        before: &[Record],
        seed: u64,
    ) -> Result<()> {
        let Some(mark) = self.current else {
            bail!("a predictor round before the initial sample was evaluated");
        };
        if self.loaded == Some(mark) {
            return Ok(());
        }
        let used: Vec<&Record> = before
            .iter()
            .filter(|r| r.round < mark.round && r.ok_accuracy().is_some())
            .collect();
        let evaluated: Vec<EncodedArch> = used
            .iter()
            .map(|r| space.encode(&r.arch))
            .collect::<Result<_, _>>()?;
        let accuracies: Vec<f64> = used.iter().filter_map(|r| r.ok_accuracy()).collect();
        surrogate.fit(&evaluated, &accuracies, fit_seed(seed, mark.round))?;
        self.loaded = Some(mark);
        Ok(())
    }
}

fn propose<'s>(
    settings: &SearchSettings,
    candidates: &Candidates,
    before: &[Record],
    round: usize,
    surrogate: Option<&mut (dyn Surrogate + 's)>,
    refits: &mut Refits,
) -> Result<Vec<Proposal>> {
    let mut rng = round_rng(settings.seed, round);
    let space = candidates.space;
    let mut seen: HashSet<String> = before
        .iter()
        .filter_map(|r| space.encode(&r.arch).ok().map(|e| e.identity))
        .collect();
    let mut out = Vec::new();
    let ok: Vec<&Record> = before
        .iter()
        .filter(|r| r.ok_accuracy().is_some())
        .collect();
    match settings.strategy {
        Strategy::Random => {
            sample_new(&mut out, &mut seen, candidates, &mut rng, settings.batch);
        }
        Strategy::Evolution if before.len() < settings.population => {
            let wanted = (settings.population - before.len()).min(settings.batch);
            sample_new(&mut out, &mut seen, candidates, &mut rng, wanted);
        }
        Strategy::Evolution => {
            let window = &ok[ok.len().saturating_sub(settings.population)..];
            for _ in 0..settings.batch * 100 {
                if out.len() == settings.batch || window.is_empty() {
                    break;
                }
                let parent = best_of(
                    window
                        .choose_multiple(&mut rng, settings.tournament)
                        .copied(),
                )
                .expect("non-empty tournament");
                let child = candidates.mutate(&parent.arch, &seen, &mut rng);
                push_new(&mut out, &mut seen, child);
            }
        }
        Strategy::Predictor | Strategy::Local if ok.len() < settings.initial => {
            let wanted = settings.initial.saturating_sub(before.len()).max(1);
            sample_new(&mut out, &mut seen, candidates, &mut rng, wanted);
        }
        Strategy::Local => {
            let mut pool = candidate_pool(settings, candidates, &ok, &mut seen, &mut rng);
            pool.shuffle(&mut rng);
            for (arch, identity) in pool.into_iter().take(settings.top_k) {
                out.push(Proposal {
                    arch,
                    identity,
                    predicted: None,
                });
            }
        }
        Strategy::Predictor => {
            let surrogate = surrogate.expect("checked by run");
            let pool = candidate_pool(settings, candidates, &ok, &mut seen, &mut rng);
            if pool.is_empty() {
                return Ok(out);
            }
            refits.ensure_fitted(surrogate, space, before, settings.seed)?;
            let encoded: Vec<EncodedArch> = pool
                .iter()
                .map(|(arch, _)| space.encode(arch))
                .collect::<Result<_, _>>()?;
            let scores = surrogate.score(&encoded)?;
            let mut order: Vec<usize> = (0..pool.len()).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            for &i in order.iter().take(settings.top_k) {
                let (arch, identity) = pool[i].clone();
                out.push(Proposal {
                    arch,
                    identity,
                    predicted: Some(scores[i]),
                });
            }
        }
    }
    Ok(out)
}

/// Add up to `wanted` unseen random architectures (fewer if the space or pool runs dry).
fn sample_new(
    out: &mut Vec<Proposal>,
    seen: &mut HashSet<String>,
    candidates: &Candidates,
    rng: &mut ChaCha8Rng,
    wanted: usize,
) {
    let target = out.len() + wanted;
    for _ in 0..wanted * 100 {
        if out.len() >= target {
            break;
        }
        push_new(out, seen, candidates.sample(rng));
    }
}

/// Add an unscored proposal unless its architecture was seen.
fn push_new(
    out: &mut Vec<Proposal>,
    seen: &mut HashSet<String>,
    (arch, identity): (String, String),
) {
    if seen.insert(identity.clone()) {
        out.push(Proposal {
            arch,
            identity,
            predicted: None,
        });
    }
}

/// How many of the best architectures so far lend their neighbourhoods to a predictor round.
const LOCAL_PARENTS: usize = 10;

/// Mutations in a row that bring nothing new after which a neighbourhood counts as exhausted.
const NEIGHBOURHOOD_MISSES: usize = 100;

/// Candidates of a predictor round: the unevaluated neighbours of the best architecture so
/// far (of the next best only while fewer than `top_k` are found; up to `LOCAL_PARENTS`
/// parents), plus an `explore` share of random samples. A round whose neighbourhoods come up
/// short of `top_k` (a local optimum everywhere, or a sparse table pool that mutations miss)
/// is filled with random candidates instead.
///
/// Why local: on validation seeds, scoring 1,000 mutations of the ten best and random samples
/// (or the whole NB201 table) let the predictor's top picks settle on good-but-not-best cells,
/// while ordering the best cell's neighbours by the predictor climbs to the optimum (README,
/// "Search").
fn candidate_pool(
    settings: &SearchSettings,
    candidates: &Candidates,
    ok: &[&Record],
    seen: &mut HashSet<String>,
    rng: &mut ChaCha8Rng,
) -> Vec<(String, String)> {
    let random_share = (settings.candidates as f64 * settings.explore).round() as usize;
    let local_quota = settings.candidates - random_share;
    let mut pool = local_candidates(candidates, ok, local_quota, settings.top_k, seen, rng);
    let random_wanted = if pool.len() < settings.top_k {
        settings.candidates - pool.len()
    } else {
        random_share
    };
    pool.extend(random_candidates(candidates, random_wanted, seen, rng));
    pool
}

/// Up to `quota` unseen neighbours of the best records, best parent first.
fn local_candidates(
    candidates: &Candidates,
    ok: &[&Record],
    quota: usize,
    enough: usize,
    seen: &mut HashSet<String>,
    rng: &mut ChaCha8Rng,
) -> Vec<(String, String)> {
    let mut parents: Vec<&Record> = ok.to_vec();
    // stable: equal accuracies keep their query order
    parents.sort_by(|a, b| {
        b.ok_accuracy()
            .unwrap_or(f64::MIN)
            .total_cmp(&a.ok_accuracy().unwrap_or(f64::MIN))
    });
    let mut pool = Vec::new();
    if quota == 0 {
        return pool;
    }
    for parent in parents.iter().take(LOCAL_PARENTS) {
        let mut misses = 0;
        while pool.len() < quota && misses < NEIGHBOURHOOD_MISSES {
            match candidates.neighbour(&parent.arch, rng) {
                Some(child) if seen.insert(child.1.clone()) => {
                    pool.push(child);
                    misses = 0;
                }
                _ => misses += 1,
            }
        }
        if pool.len() >= enough.min(quota) {
            break;
        }
    }
    pool
}

/// Up to `wanted` unseen random candidates: every unevaluated pool member when the pool has
/// no more than that left, else random samples.
fn random_candidates(
    candidates: &Candidates,
    wanted: usize,
    seen: &mut HashSet<String>,
    rng: &mut ChaCha8Rng,
) -> Vec<(String, String)> {
    if wanted == 0 {
        return Vec::new();
    }
    if let Some(pool) = &candidates.pool
        && pool.list.len() <= wanted + seen.len()
    {
        return pool
            .list
            .iter()
            .filter_map(|a| candidates.admit(a))
            .filter(|(_, id)| seen.insert(id.clone()))
            .collect();
    }
    let mut pool = Vec::with_capacity(wanted);
    for _ in 0..wanted * 20 {
        if pool.len() >= wanted {
            break;
        }
        let child = candidates.sample(rng);
        if seen.insert(child.1.clone()) {
            pool.push(child);
        }
    }
    pool.shuffle(rng);
    pool
}

#[cfg(test)]
mod tests {
    use super::oracle::TableOracle;
    use super::*;
    use crate::data::Table;
    use crate::space;

    struct Quiet;
    impl Progress for Quiet {
        fn evaluated(&mut self, _: &Record, _: Option<&Record>) {}
    }

    /// A predictor that knows the truth: predictor-guided search must then go straight to the
    /// best architecture among its candidates.
    struct Oracular(HashMap<String, f64>);
    impl Surrogate for Oracular {
        fn fit(&mut self, _: &[EncodedArch], _: &[f64], _: u64) -> Result<()> {
            Ok(())
        }

        fn score(&self, candidates: &[EncodedArch]) -> Result<Vec<f64>> {
            Ok(candidates.iter().map(|c| self.0[&c.canonical]).collect())
        }
    }

    /// The truth plus noise that depends on the fit (its seed and data), so a search that
    /// refits differently proposes differently; records the training-set size of every fit.
    struct NoisyFits {
        truth: HashMap<String, f64>,
        key: u64,
        fits: Vec<usize>,
    }
    impl Surrogate for NoisyFits {
        fn fit(&mut self, evaluated: &[EncodedArch], _: &[f64], seed: u64) -> Result<()> {
            self.key = seed ^ evaluated.len() as u64;
            self.fits.push(evaluated.len());
            Ok(())
        }

        fn score(&self, candidates: &[EncodedArch]) -> Result<Vec<f64>> {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            let hasher = BuildHasherDefault::<DefaultHasher>::default();
            let noise = |c: &EncodedArch| {
                (hasher.hash_one((self.key, &c.canonical)) % 1000) as f64 / 1000.0
            };
            Ok(candidates
                .iter()
                .map(|c| self.truth[&c.canonical] + 2.0 * noise(c))
                .collect())
        }
    }

    fn nb201() -> (Box<dyn DynSpace>, Vec<EncodedArch>, HashMap<String, f64>) {
        let space = space::by_name("nb201").unwrap();
        let table = Table::load("nb201").unwrap();
        let archs = table.encode(space.as_ref(), None).unwrap();
        let acc = table.target("cifar10_test_acc").unwrap();
        let truth = archs.iter().map(|a| a.canonical.clone()).zip(acc).collect();
        (space, archs, truth)
    }

    fn settings(strategy: Strategy, budget: usize) -> SearchSettings {
        SearchSettings {
            strategy,
            budget,
            seed: 7,
            batch: 1,
            population: 10,
            tournament: 3,
            initial: 10,
            candidates: 300,
            explore: 0.0,
            top_k: 5,
            refit_growth: 0.0,
        }
    }

    fn search(
        s: &SearchSettings,
        space: &dyn DynSpace,
        truth: &HashMap<String, f64>,
        journal: &std::path::Path,
        surrogate: Option<&mut dyn Surrogate>,
    ) -> Vec<Record> {
        let oracle = TableOracle::new(truth.clone(), "nb201".into());
        let candidates = Candidates::whole_space(space);
        let (mut j, records) = if journal.exists() {
            Journal::open(journal).unwrap()
        } else {
            (Journal::create(journal).unwrap(), Vec::new())
        };
        run(
            s,
            &candidates,
            &oracle,
            surrogate,
            &mut j,
            records,
            &mut Quiet,
        )
        .unwrap()
    }

    #[test]
    fn every_strategy_spends_the_budget_on_distinct_architectures() {
        let (space, _, truth) = nb201();
        let dir = tempfile::tempdir().unwrap();
        for strategy in [
            Strategy::Random,
            Strategy::Evolution,
            Strategy::Predictor,
            Strategy::Local,
        ] {
            let path = dir.path().join(format!("{strategy}.jsonl"));
            let mut surrogate = Oracular(truth.clone());
            let records = search(
                &settings(strategy, 25),
                space.as_ref(),
                &truth,
                &path,
                Some(&mut surrogate),
            );
            assert_eq!(records.len(), 25, "{strategy}");
            let distinct: HashSet<&str> = records.iter().map(|r| r.arch.as_str()).collect();
            assert_eq!(distinct.len(), 25, "{strategy}");
            for (i, r) in records.iter().enumerate() {
                assert_eq!(r.query, i + 1);
                assert_eq!(r.accuracy, Some(truth[&r.arch]));
            }
        }
    }

    #[test]
    fn a_perfect_predictor_finds_the_optimum_right_after_the_initial_sample() {
        let (space, archs, truth) = nb201();
        let dir = tempfile::tempdir().unwrap();
        let mut surrogate = Oracular(truth.clone());
        // a pool no larger than --candidates: every unevaluated cell is scored
        let s = SearchSettings {
            candidates: 20_000,
            explore: 1.0,
            ..settings(Strategy::Predictor, 12)
        };
        let oracle = TableOracle::new(truth.clone(), "nb201".into());
        let candidates = Candidates::pool(space.as_ref(), &archs);
        let mut j = Journal::create(&dir.path().join("j.jsonl")).unwrap();
        let records = run(
            &s,
            &candidates,
            &oracle,
            Some(&mut surrogate),
            &mut j,
            Vec::new(),
            &mut Quiet,
        )
        .unwrap();
        let optimum = truth.values().cloned().fold(f64::MIN, f64::max);
        assert_eq!(records[10].accuracy, Some(optimum));
        assert_eq!(records[10].predicted, Some(optimum));
        assert!(records[..10].iter().all(|r| r.predicted.is_none()));
    }

    #[test]
    fn evolution_improves_on_its_initial_population() {
        let (space, _, truth) = nb201();
        let dir = tempfile::tempdir().unwrap();
        let records = search(
            &settings(Strategy::Evolution, 150),
            space.as_ref(),
            &truth,
            &dir.path().join("j.jsonl"),
            None,
        );
        let best = |rs: &[Record]| best_record(rs).unwrap().accuracy.unwrap();
        assert!(best(&records) > best(&records[..10]) + 0.5);
    }

    #[test]
    fn a_resumed_search_ends_exactly_like_an_uninterrupted_one() {
        let (space, _, truth) = nb201();
        let dir = tempfile::tempdir().unwrap();
        for strategy in [Strategy::Evolution, Strategy::Predictor] {
            let mut surrogate = Oracular(truth.clone());
            let straight = dir.path().join(format!("{strategy}-straight.jsonl"));
            let full = search(
                &settings(strategy, 33),
                space.as_ref(),
                &truth,
                &straight,
                Some(&mut surrogate),
            );
            // stopped after 13 queries (mid-round for the predictor's rounds of 5), resumed
            let resumed = dir.path().join(format!("{strategy}-resumed.jsonl"));
            search(
                &settings(strategy, 13),
                space.as_ref(),
                &truth,
                &resumed,
                Some(&mut surrogate),
            );
            let again = search(
                &settings(strategy, 33),
                space.as_ref(),
                &truth,
                &resumed,
                Some(&mut surrogate),
            );
            assert_eq!(again, full, "{strategy}");
        }
    }

    #[test]
    fn refits_follow_the_growth_schedule_and_survive_a_resume() {
        let (space, _, truth) = nb201();
        let dir = tempfile::tempdir().unwrap();
        let s = |budget| SearchSettings {
            refit_growth: 0.3,
            ..settings(Strategy::Predictor, budget)
        };
        let noisy = || NoisyFits {
            truth: truth.clone(),
            key: 0,
            fits: Vec::new(),
        };
        let mut straight = noisy();
        let full = search(
            &s(40),
            space.as_ref(),
            &truth,
            &dir.path().join("straight.jsonl"),
            Some(&mut straight),
        );
        // rounds of 5 after 10 random: a refit once the data grew by 30 %
        assert_eq!(straight.fits, vec![10, 15, 20, 30]);
        // interrupted at 27 (mid-round, on the model fitted at 20), resumed by a fresh process
        let path = dir.path().join("resumed.jsonl");
        search(&s(27), space.as_ref(), &truth, &path, Some(&mut noisy()));
        let mut resumed = noisy();
        let again = search(&s(40), space.as_ref(), &truth, &path, Some(&mut resumed));
        assert_eq!(again, full);
        assert_eq!(resumed.fits, vec![20, 30]);
    }

    fn l1(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
    }

    #[test]
    fn the_nearest_pool_member_is_a_closest_one_other_than_the_parent() {
        use crate::encoding::{CellGraph, GlobalEncoding};
        let member = |id: &str, flat: [f32; 3]| EncodedArch {
            canonical: id.to_string(),
            identity: id.to_string(),
            cell: CellGraph::chain(vec![0]),
            global: GlobalEncoding { cells: Vec::new() },
            flat: flat.to_vec(),
        };
        let pool = Pool::new(&[
            member("parent", [1.0, 0.0, 0.0]),
            member("far", [0.0, 0.0, 1.0]),
            member("near-a", [0.0, 1.0, 0.0]),
            member("near-b", [0.5, 0.5, 0.0]),
        ]);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut drawn = HashSet::new();
        for _ in 0..50 {
            drawn.insert(pool.nearest(&[1.0, 0.0, 0.0], "parent", &mut rng).unwrap());
        }
        // near-b is closest (1.0); the parent itself (0.0) is never returned
        assert_eq!(drawn, HashSet::from(["near-b".to_string()]));
        // both at distance 0.5 from the child: ties are drawn at random, so both come up
        drawn.clear();
        for _ in 0..50 {
            drawn.insert(
                pool.nearest(&[0.25, 0.75, 0.0], "parent", &mut rng)
                    .unwrap(),
            );
        }
        assert_eq!(drawn.len(), 2, "{drawn:?}");
        assert!(!drawn.contains("far") && !drawn.contains("parent"));
    }

    #[test]
    fn the_pruned_nearest_search_matches_a_full_scan() {
        use crate::encoding::{CellGraph, GlobalEncoding};
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let vector = |rng: &mut ChaCha8Rng| -> Vec<f32> {
            (0..37).map(|_| rng.random_range(0.0..1.0)).collect()
        };
        let members: Vec<EncodedArch> = (0..300)
            .map(|i| EncodedArch {
                canonical: i.to_string(),
                identity: i.to_string(),
                cell: CellGraph::chain(vec![0]),
                global: GlobalEncoding { cells: Vec::new() },
                flat: vector(&mut rng),
            })
            .collect();
        let pool = Pool::new(&members);
        for trial in 0..200 {
            let parent = &members[trial % members.len()];
            // children near the parent (as mutations are) and anywhere
            let child: Vec<f32> = if trial % 2 == 0 {
                parent
                    .flat
                    .iter()
                    .map(|x| x + rng.random_range(-0.2..0.2))
                    .collect()
            } else {
                vector(&mut rng)
            };
            let found = pool.nearest(&child, &parent.identity, &mut rng).unwrap();
            let found_distance = l1(&members[found.parse::<usize>().unwrap()].flat, &child);
            let best = members
                .iter()
                .filter(|m| m.identity != parent.identity)
                .map(|m| l1(&m.flat, &child))
                .fold(f32::INFINITY, f32::min);
            assert!(
                (found_distance - best).abs() < 1e-4,
                "{found_distance} vs {best}"
            );
        }
    }

    #[test]
    fn mutations_in_a_sparse_pool_land_on_nearby_members() {
        let (space, archs, _) = nb201();
        // one row in 16: most one-edit neighbours of a member are missing
        let sparse: Vec<EncodedArch> = archs.iter().step_by(16).cloned().collect();
        let flat: HashMap<&str, &[f32]> = sparse
            .iter()
            .map(|a| (a.canonical.as_str(), a.flat.as_slice()))
            .collect();
        let candidates = Candidates::pool(space.as_ref(), &sparse);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut near, mut random) = (0.0, 0.0);
        let trials = 200;
        for i in 0..trials {
            let parent = &sparse[i * 5 % sparse.len()];
            let (child, identity) = candidates.mutate(&parent.canonical, &HashSet::new(), &mut rng);
            assert_ne!(identity, parent.identity);
            near += l1(flat[child.as_str()], &parent.flat);
            let (other, _) = candidates.sample(&mut rng);
            random += l1(flat[other.as_str()], &parent.flat);
        }
        let (near, random) = (near / trials as f32, random / trials as f32);
        // each differing edge counts 2 in the one-hot encoding: the mutation is one edge away,
        // the nearest member to it mostly one more; a random member about 4.7 edges away
        assert!(near <= 4.5 && random > 8.0, "near {near}, random {random}");
    }

    #[test]
    fn a_table_pool_limits_the_candidates_and_ends_when_exhausted() {
        let (space, archs, truth) = nb201();
        let small: Vec<EncodedArch> = archs[..12].to_vec();
        let truth_small: HashMap<String, f64> = small
            .iter()
            .map(|a| (a.canonical.clone(), truth[&a.canonical]))
            .collect();
        let oracle = TableOracle::new(truth_small.clone(), "12 rows".into());
        let candidates = Candidates::pool(space.as_ref(), &small);
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(&dir.path().join("j.jsonl")).unwrap();
        let records = run(
            &settings(Strategy::Evolution, 50),
            &candidates,
            &oracle,
            None,
            &mut j,
            Vec::new(),
            &mut Quiet,
        )
        .unwrap();
        assert_eq!(records.len(), 12);
        assert!(records.iter().all(|r| truth_small.contains_key(&r.arch)));
    }
}
