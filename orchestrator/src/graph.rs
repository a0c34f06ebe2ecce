//! Startup validation of the whole worker graph: names, references,
//! dependency cycles, Continuous dependencies and missing state. Turns the
//! list of [`WorkerSpec`]s into the indexed [`Graph`] the engine runs.
//!
//! Never starts anything; [`crate::validate`] exposes it to users' tests.
//! It runs at every startup, so it stays linear in workers plus edges, never
//! recurses (a 100,000-worker dependency chain must not overflow the stack),
//! and works on flat arrays of `u32` ids rather than per-worker vectors until
//! the graph is known to be valid: at 100,000 workers, the cost is cache
//! misses and fresh memory pages, not arithmetic.

use std::collections::{HashMap, VecDeque};

use crate::error::{BuildError, Location, Problem, ProblemKind};
use crate::spec::{Schedule, WorkerConfig, WorkerSpec};
use crate::worker_fn::StateMap;

/// Index of a worker in [`Graph::workers`]. Workers are sorted by name, so
/// comparing ids compares names.
pub(crate) type WorkerId = usize;

/// A validated worker graph.
pub(crate) struct Graph {
    /// Every worker, sorted by name.
    pub workers: Vec<WorkerConfig>,
    /// Per worker (same index), its resolved edges.
    pub edges: Vec<Edges>,
    /// Per worker: whether it has any edge at all.
    related: Vec<bool>,
}

impl Graph {
    pub(crate) fn new(workers: Vec<WorkerConfig>, edges: Vec<Edges>) -> Self {
        let related = edges
            .iter()
            .map(|e| !(e.depends_on.is_empty() && e.dependents.is_empty() && e.conflicts.is_empty()))
            .collect();
        Graph { workers, edges, related }
    }

    /// `w`'s edges. Most workers have none; for those this reads a dense
    /// flag instead of their `Edges` (three vectors on a cache line of their
    /// own), which on a burst of fires saves a cache miss per look.
    pub(crate) fn edges_of(&self, w: WorkerId) -> &Edges {
        static NONE: Edges = Edges { depends_on: Vec::new(), dependents: Vec::new(), conflicts: Vec::new() };
        if self.related[w] { &self.edges[w] } else { &NONE }
    }
}

/// One worker's resolved relations, each sorted and without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Edges {
    /// The workers it `depends_on`.
    pub depends_on: Vec<WorkerId>,
    /// The workers that depend on it.
    pub dependents: Vec<WorkerId>,
    /// The workers it may never run at the same time as: `blocks` in either
    /// direction, plus dependencies and dependents. Never itself.
    pub conflicts: Vec<WorkerId>,
}

/// Validates every spec and the graph they form, reporting every problem.
pub(crate) fn validate(specs: Vec<WorkerSpec>, states: &StateMap) -> Result<Graph, BuildError> {
    if specs.is_empty() {
        return Err(BuildError::new(vec![Problem::new(None, None, ProblemKind::NoWorkers)]));
    }
    // Ids are `u32` inside this module; 2^32 workers would not fit in memory.
    assert!(u32::try_from(specs.len()).is_ok(), "more than u32::MAX workers");
    let mut problems = Vec::new();
    // A worker with a refused value still takes part in the graph checks, so
    // its unknown names, cycles and missing state are reported too. Collecting
    // through `map` lets std reuse the specs' allocation for the configs (a
    // `WorkerConfig` is smaller than a `WorkerSpec`): at 100,000 workers,
    // fresh pages for a second 25 MB array cost more than all the checks.
    let mut workers: Vec<WorkerConfig> = specs.into_iter().map(|spec| spec.check(&mut problems)).collect();

    // Everything up to the move into name order works on input positions,
    // where the workers and the strings they own lie in memory in the order
    // they were created.
    let (relations, order) = {
        let text = NameText::new(&workers);
        let sorted = text.sorted(&workers);
        let names = Names::new(&workers, &sorted, &mut problems);
        let relations = Relations::resolve(&workers, &sorted, &names, &mut problems);
        (relations, sorted.iter().map(|&(_, input)| input).collect())
    };
    move_into_order(&mut workers, order);

    for cycle in dependency_cycles(&relations.depends_on) {
        let first = &workers[cycle[0] as usize];
        let path = cycle.iter().map(|&w| workers[w as usize].name.to_string()).collect();
        problems.push(Problem::new(Some(first.name.to_string()), Some(first.location), ProblemKind::Cycle { path }));
    }
    let continuous: Vec<bool> = workers.iter().map(|w| matches!(w.schedule, Schedule::Continuous { .. })).collect();
    for (id, worker) in workers.iter().enumerate() {
        for &dependency in relations.depends_on.of(id) {
            if continuous[dependency as usize] {
                problems.push(problem_of(
                    worker,
                    ProblemKind::ContinuousDependency { dependency: workers[dependency as usize].name.to_string() },
                ));
            }
        }
        for (i, &state) in worker.state_types.iter().enumerate() {
            // A fn may take the same `State<T>` twice; one report is enough.
            if !states.contains(state) && !worker.state_types[..i].contains(&state) {
                problems.push(problem_of(
                    worker,
                    ProblemKind::MissingState { type_name: state.name(), registered: states.type_names().to_vec() },
                ));
            }
        }
    }

    if problems.is_empty() {
        let edges = relations.into_edges();
        Ok(Graph::new(workers, edges))
    } else {
        sort_problems(&mut problems);
        Err(BuildError::new(problems))
    }
}

fn problem_of(worker: &WorkerConfig, kind: ProblemKind) -> Problem {
    Problem::new(Some(worker.name.to_string()), Some(worker.location), kind)
}

fn location_key(location: &Location) -> (&'static str, u32) {
    (location.file, location.line)
}

/// Every worker's name copied into one buffer, in input order. Sorting and
/// looking up names then reads one compact block of memory instead of
/// 100,000 separate allocations.
struct NameText {
    text: String,
    /// Where each worker's name ends in `text`; it starts where the previous ends.
    ends: Vec<usize>,
}

impl NameText {
    fn new(workers: &[WorkerConfig]) -> Self {
        let mut text = String::with_capacity(workers.iter().map(|w| w.name.len()).sum());
        let ends = workers
            .iter()
            .map(|w| {
                text.push_str(&w.name);
                text.len()
            })
            .collect();
        NameText { text, ends }
    }

    /// `(name, input position)` of every worker, by name (the engine breaks
    /// ties by id, meaning by name), then by location so that duplicates come
    /// out the same way on every run. The position in this list is the id.
    fn sorted(&self, workers: &[WorkerConfig]) -> Vec<(&str, u32)> {
        let mut start = 0;
        let mut sorted: Vec<(&str, u32)> = self
            .ends
            .iter()
            .zip(0..)
            .map(|(&end, input)| {
                let name = &self.text[start..end];
                start = end;
                (name, input)
            })
            .collect();
        sorted.sort_unstable_by(|a, b| {
            a.0.cmp(b.0).then_with(|| {
                let location = |input: u32| location_key(&workers[input as usize].location);
                location(a.1).cmp(&location(b.1))
            })
        });
        sorted
    }
}

/// Moves the worker at input position `order[id]` to `id`, in place: each
/// config moves once, and no second array of them is allocated.
fn move_into_order(workers: &mut [WorkerConfig], mut order: Vec<u32>) {
    // Follow each cycle of the permutation, marking placed positions with
    // `order[p] = p`.
    for start in 0..order.len() {
        let mut position = start;
        loop {
            let source = order[position] as usize;
            order[position] = position as u32;
            if source == start {
                break;
            }
            workers.swap(position, source);
            position = source;
        }
    }
}

/// Every worker name of the build.
struct Names<'a> {
    /// The workers' ids; for a duplicated name, the first by location.
    ids: HashMap<&'a str, u32>,
    sorted: &'a [(&'a str, u32)],
}

impl<'a> Names<'a> {
    /// Indexes the names and reports each duplicated name once, at its first
    /// definition, listing the others.
    fn new(workers: &[WorkerConfig], sorted: &'a [(&'a str, u32)], problems: &mut Vec<Problem>) -> Self {
        let location = |id: usize| workers[sorted[id].1 as usize].location;
        let mut ids = HashMap::with_capacity(sorted.len());
        // Equal names are next to each other in `sorted`, ordered by location.
        let mut id = 0;
        for same_name in sorted.chunk_by(|a, b| a.0 == b.0) {
            let name = same_name[0].0;
            ids.insert(name, id as u32);
            if same_name.len() > 1 {
                problems.push(Problem::new(
                    Some(name.to_string()),
                    Some(location(id)),
                    ProblemKind::DuplicateName { others: (id + 1..id + same_name.len()).map(location).collect() },
                ));
            }
            id += same_name.len();
        }
        Names { ids, sorted }
    }

    fn resolve(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// Every distinct name, for a did-you-mean, in id order.
    fn candidates(&self) -> Vec<&'a str> {
        let mut candidates: Vec<&'a str> = self.sorted.iter().map(|&(name, _)| name).collect();
        candidates.dedup();
        candidates
    }
}

/// Per-worker lists of ids in one flat array: worker `w`'s list is
/// `targets[start[w]..start[w + 1]]`.
struct Adjacency {
    start: Vec<u32>,
    targets: Vec<u32>,
}

impl Adjacency {
    fn of(&self, worker: usize) -> &[u32] {
        &self.targets[self.start[worker] as usize..self.start[worker + 1] as usize]
    }

    fn len(&self) -> usize {
        self.start.len() - 1
    }

    /// The reverse lists: `w` is in `reversed.of(v)` when `v` is in
    /// `self.of(w)`. Each reversed list comes out sorted, as it is filled in
    /// id order.
    fn reversed(&self) -> Adjacency {
        let n = self.len();
        let mut start = vec![0u32; n + 1];
        for &target in &self.targets {
            start[target as usize + 1] += 1;
        }
        for w in 0..n {
            start[w + 1] += start[w];
        }
        let mut next = start.clone();
        let mut targets = vec![0u32; self.targets.len()];
        for w in 0..n {
            for &target in self.of(w) {
                targets[next[target as usize] as usize] = w as u32;
                next[target as usize] += 1;
            }
        }
        Adjacency { start, targets }
    }

    /// The lists of `order`'s workers, in that order.
    fn reordered(&self, order: impl ExactSizeIterator<Item = u32>) -> Adjacency {
        let mut start = Vec::with_capacity(order.len() + 1);
        let mut targets = Vec::with_capacity(self.targets.len());
        start.push(0);
        for worker in order {
            targets.extend_from_slice(self.of(worker as usize));
            start.push(targets.len() as u32);
        }
        Adjacency { start, targets }
    }

    fn to_ids(list: &[u32]) -> Vec<WorkerId> {
        list.iter().map(|&w| w as WorkerId).collect()
    }
}

/// The resolved `depends_on` (sorted, deduplicated) and `blocks` of every
/// worker.
struct Relations {
    depends_on: Adjacency,
    blocks: Adjacency,
}

impl Relations {
    /// Resolves every `depends_on` and `blocks` name to an id, reporting the
    /// unknown ones. Walks the workers in input order; the lists come out in
    /// id order.
    fn resolve(
        workers: &[WorkerConfig],
        sorted: &[(&str, u32)],
        names: &Names<'_>,
        problems: &mut Vec<Problem>,
    ) -> Relations {
        let n = workers.len();
        let mut depends_on = Adjacency { start: Vec::with_capacity(n + 1), targets: Vec::with_capacity(2 * n) };
        let mut blocks = Adjacency { start: Vec::with_capacity(n + 1), targets: Vec::new() };
        depends_on.start.push(0);
        blocks.start.push(0);
        let mut suggestions = Suggestions::new(names, SUGGESTION_BUDGET);
        let mut reported: Vec<(&str, &str)> = Vec::new();
        for worker in workers {
            reported.clear();
            for (key, references, list) in
                [("depends_on", &worker.depends_on, &mut depends_on), ("blocks", &worker.blocks, &mut blocks)]
            {
                let begin = list.targets.len();
                for reference in references.iter() {
                    let reference: &str = reference;
                    match names.resolve(reference) {
                        Some(target) => list.targets.push(target),
                        None if reported.contains(&(key, reference)) => {}
                        None => {
                            reported.push((key, reference));
                            let did_you_mean = suggestions.for_unknown(reference);
                            problems.push(problem_of(
                                worker,
                                ProblemKind::UnknownWorker { key, name: reference.to_string(), did_you_mean },
                            ));
                        }
                    }
                }
                let kept = sort_dedup(&mut list.targets[begin..]);
                list.targets.truncate(begin + kept);
                list.start.push(list.targets.len() as u32);
            }
        }
        Relations {
            depends_on: depends_on.reordered(sorted.iter().map(|&(_, input)| input)),
            blocks: blocks.reordered(sorted.iter().map(|&(_, input)| input)),
        }
    }

    /// The engine's per-worker form. Each vector is allocated once, at its
    /// final size.
    fn into_edges(self) -> Vec<Edges> {
        let dependents = self.depends_on.reversed();
        let blocked_by = self.blocks.reversed();
        let mut conflicts = Vec::new();
        (0..self.depends_on.len())
            .map(|w| {
                conflicts.clear();
                for list in [&self.depends_on, &dependents, &self.blocks, &blocked_by] {
                    conflicts.extend_from_slice(list.of(w));
                }
                let kept = sort_dedup(&mut conflicts);
                conflicts.truncate(kept);
                conflicts.retain(|&c| c as usize != w);
                Edges {
                    depends_on: Adjacency::to_ids(self.depends_on.of(w)),
                    dependents: Adjacency::to_ids(dependents.of(w)),
                    conflicts: Adjacency::to_ids(&conflicts),
                }
            })
            .collect()
    }
}

/// Sorts `list` and moves its distinct values to the front; returns how many
/// there are.
fn sort_dedup(list: &mut [u32]) -> usize {
    list.sort_unstable();
    let mut kept = 0;
    for i in 0..list.len() {
        if kept == 0 || list[i] != list[kept - 1] {
            list[kept] = list[i];
            kept += 1;
        }
    }
    kept
}

/// How many registered names the did-you-mean search may compare in one
/// validation: about a second of work.
const SUGGESTION_BUDGET: usize = 5_000_000;

/// Did-you-mean suggestions for unknown names, computed once per name (the
/// same typo tends to repeat across workers). Each search compares against
/// every registered name, so a budget bounds the total: a build with thousands
/// of distinct unknown names among thousands of workers (one per tenant of a
/// family of workers that is missing, say) still fails fast; names past the
/// budget get no suggestion.
struct Suggestions<'n, 'w> {
    names: &'n Names<'n>,
    /// Every registered name, gathered at the first unknown name.
    candidates: Option<Vec<&'n str>>,
    known: HashMap<&'w str, Option<String>>,
    budget: usize,
}

impl<'n, 'w> Suggestions<'n, 'w> {
    fn new(names: &'n Names<'n>, budget: usize) -> Self {
        Suggestions { names, candidates: None, known: HashMap::new(), budget }
    }

    fn for_unknown(&mut self, unknown: &'w str) -> Option<String> {
        if let Some(known) = self.known.get(unknown) {
            return known.clone();
        }
        let candidates = self.candidates.get_or_insert_with(|| self.names.candidates());
        let suggestion = if self.budget >= candidates.len() {
            self.budget -= candidates.len();
            did_you_mean(unknown, candidates).map(str::to_string)
        } else {
            None
        };
        self.known.insert(unknown, suggestion.clone());
        suggestion
    }
}

/// The registered name closest to `unknown`, if it is close enough to be the
/// intended one.
///
/// The rule is rustc's for misspelled identifiers, which Rust developers know
/// from their compiler: an optimal-string-alignment distance (insertions,
/// deletions, substitutions, and swaps of adjacent characters, each costing
/// one) of at most a third of the unknown name's length, and at least one.
/// Worker names tend to share prefixes (`tenant-1-sync`, `tenant-2-sync`),
/// where a prefix-weighted similarity such as Jaro-Winkler would suggest an
/// unrelated worker for nearly any name with that prefix. A name equal up to
/// ASCII case wins outright. Ties go to the first candidate, keeping the
/// message stable.
pub(crate) fn did_you_mean<'a>(unknown: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let unknown_len = unknown.chars().count();
    let max_distance = unknown_len.max(3) / 3;
    let mut best: Option<(usize, &'a str)> = None;
    for &candidate in candidates {
        if candidate.eq_ignore_ascii_case(unknown) {
            return Some(candidate);
        }
        // The distance is at least the length difference: skip the quadratic
        // comparison for candidates that cannot be close.
        if candidate.chars().count().abs_diff(unknown_len) > max_distance {
            continue;
        }
        let distance = strsim::osa_distance(unknown, candidate);
        if distance <= max_distance && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Marks a worker not yet reached by a search.
const UNVISITED: u32 = u32::MAX;

/// Every dependency cycle, once per strongly connected component: the path
/// from the component's lowest id back to itself (`[a, b, c, a]`), shortest
/// among the cycles through that worker. A self-dependency is `[a, a]`.
///
/// Tarjan's algorithm with an explicit stack, so a long chain costs heap, not
/// call stack.
fn dependency_cycles(depends_on: &Adjacency) -> Vec<Vec<u32>> {
    let n = depends_on.len();
    let mut search = Tarjan {
        depends_on,
        index: vec![UNVISITED; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next_index: 0,
    };
    // The explicit call stack: (worker, position in `depends_on.targets` of
    // its next dependency to visit).
    let mut calls: Vec<(u32, u32)> = Vec::new();
    let mut cycles = Vec::new();
    // Scratch space of the cycle search, allocated at the first cycle: per
    // worker, its component's root and its parent in the search.
    let mut scratch: Option<(Vec<u32>, Vec<u32>)> = None;

    for root in 0..n as u32 {
        if search.index[root as usize] != UNVISITED {
            continue;
        }
        calls.push(search.enter(root));
        while let Some((v, next)) = calls.last_mut() {
            let v = *v as usize;
            if *next < depends_on.start[v + 1] {
                let w = depends_on.targets[*next as usize];
                *next += 1;
                if search.index[w as usize] == UNVISITED {
                    calls.push(search.enter(w));
                } else if search.on_stack[w as usize] {
                    search.low[v] = search.low[v].min(search.index[w as usize]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(caller, _)) = calls.last() {
                search.low[caller as usize] = search.low[caller as usize].min(search.low[v]);
            }
            if search.low[v] != search.index[v] {
                continue;
            }
            // `v` roots a component: itself and everything above it on the stack.
            let start = search.stack.iter().rposition(|&w| w as usize == v).expect("a component root is on the stack");
            let members = &search.stack[start..];
            for &w in members {
                search.on_stack[w as usize] = false;
            }
            if members.len() > 1 || depends_on.of(v).contains(&(v as u32)) {
                let (component, parent) = scratch.get_or_insert_with(|| (vec![UNVISITED; n], vec![UNVISITED; n]));
                for &w in members {
                    component[w as usize] = v as u32;
                }
                let first = *members.iter().min().expect("a component has at least its root");
                cycles.push(shortest_cycle_through(first, depends_on, component, parent));
            }
            search.stack.truncate(start);
        }
    }
    cycles
}

/// The state of Tarjan's search, per worker: the order it was reached in,
/// the lowest such order reachable from it, and whether it is on the stack
/// of workers whose component is not settled yet.
struct Tarjan<'a> {
    depends_on: &'a Adjacency,
    index: Vec<u32>,
    low: Vec<u32>,
    on_stack: Vec<bool>,
    stack: Vec<u32>,
    next_index: u32,
}

impl Tarjan<'_> {
    /// Reaches `w`; returns its frame for the explicit call stack.
    fn enter(&mut self, w: u32) -> (u32, u32) {
        self.index[w as usize] = self.next_index;
        self.low[w as usize] = self.next_index;
        self.next_index += 1;
        self.stack.push(w);
        self.on_stack[w as usize] = true;
        (w, self.depends_on.start[w as usize])
    }
}

/// Breadth-first search from `first` inside its component, until a worker
/// that depends on `first` closes the cycle.
fn shortest_cycle_through(first: u32, depends_on: &Adjacency, component: &[u32], parent: &mut [u32]) -> Vec<u32> {
    let mut queue = VecDeque::from([first]);
    parent[first as usize] = first;
    while let Some(v) = queue.pop_front() {
        for &w in depends_on.of(v as usize) {
            if w == first {
                let mut path = vec![first];
                let mut at = v;
                while at != first {
                    path.push(at);
                    at = parent[at as usize];
                }
                path[1..].reverse();
                path.push(first);
                return path;
            }
            // Components are disjoint, so `parent` never needs resetting.
            if component[w as usize] == component[first as usize] && parent[w as usize] == UNVISITED {
                parent[w as usize] = v;
                queue.push_back(w);
            }
        }
    }
    unreachable!("every worker of a strongly connected component lies on a cycle through any other")
}

/// Orders problems by location (problems without one, such as "no worker",
/// first), then by kind, then by message, so the report reads the same on
/// every run whatever order the linker registered workers in.
fn sort_problems(problems: &mut [Problem]) {
    fn rank(kind: &ProblemKind) -> u8 {
        match kind {
            ProblemKind::NoWorkers => 0,
            ProblemKind::InvalidOption { .. } => 1,
            ProblemKind::DuplicateName { .. } => 2,
            ProblemKind::UnknownWorker { .. } => 3,
            ProblemKind::Cycle { .. } => 4,
            ProblemKind::ContinuousDependency { .. } => 5,
            ProblemKind::MissingState { .. } => 6,
        }
    }
    problems.sort_by_cached_key(|p| (p.location.as_ref().map(location_key), rank(&p.kind), p.to_string()));
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::Mode;
    use crate::context::State;

    /// A Triggered worker whose location is the caller's line.
    #[track_caller]
    fn worker(name: &str) -> WorkerSpec {
        WorkerSpec::new(name.to_string(), || async {})
    }

    fn validate_without_state(specs: Vec<WorkerSpec>) -> Result<Graph, BuildError> {
        validate(specs, &StateMap::default())
    }

    fn problems_of(specs: Vec<WorkerSpec>) -> Vec<Problem> {
        match validate_without_state(specs) {
            Ok(_) => panic!("the graph should be invalid"),
            Err(error) => error.problems().to_vec(),
        }
    }

    fn kinds_of(specs: Vec<WorkerSpec>) -> Vec<ProblemKind> {
        problems_of(specs).into_iter().map(|p| p.kind).collect()
    }

    fn names_of(graph: &Graph, ids: &[WorkerId]) -> Vec<String> {
        ids.iter().map(|&id| graph.workers[id].name.to_string()).collect()
    }

    fn valid(specs: Vec<WorkerSpec>) -> Graph {
        match validate_without_state(specs) {
            Ok(graph) => graph,
            Err(error) => panic!("the graph should be valid, got: {error}"),
        }
    }

    #[test]
    fn no_worker_at_all_is_reported_with_the_library_crate_hint() {
        let problems = problems_of(Vec::new());
        assert_eq!(problems, vec![Problem::new(None, None, ProblemKind::NoWorkers)]);
        assert!(problems[0].to_string().contains("use my_workers as _;"));
    }

    #[test]
    fn a_worker_with_an_invalid_option_is_reported_by_its_own_check() {
        let problems = problems_of(vec![worker("poll").interval(Duration::ZERO)]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].worker.as_deref(), Some("poll"));
        assert!(matches!(problems[0].kind, ProblemKind::InvalidOption { key: "interval", .. }));
    }

    #[test]
    fn every_duration_longer_than_a_century_is_refused_naming_the_worker_and_the_option() {
        let max = Duration::MAX;
        let specs = vec![
            worker("a").interval(max).timeout(max).backoff(max).max_backoff(max).initial_delay(max).jitter(max),
            worker("b").delay(max),
            worker("c").mode(crate::Mode::Continuous).restart_delay(max),
        ];
        let mut refused: Vec<(String, &str)> = problems_of(specs)
            .into_iter()
            .map(|p| match p.kind {
                ProblemKind::InvalidOption { key, reason } => {
                    assert!(reason.contains("100 years"), "{reason}");
                    (p.worker.unwrap_or_default(), key)
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        refused.sort();
        let expected = [
            ("a", "backoff"),
            ("a", "initial_delay"),
            ("a", "interval"),
            ("a", "jitter"),
            ("a", "max_backoff"),
            ("a", "timeout"),
            ("b", "delay"),
            ("c", "restart_delay"),
        ];
        assert_eq!(refused, expected.map(|(w, k)| (w.to_string(), k)));
        // A century is still accepted.
        let century = crate::schedule_syntax::MAX_DURATION;
        valid(vec![worker("d").interval(century).initial_delay(century).timeout(century)]);
    }

    #[test]
    fn a_cron_expression_that_never_fires_is_refused() {
        let problems = problems_of(vec![worker("leap").cron("0 0 30 2 *")]);
        assert!(
            matches!(&problems[0].kind, ProblemKind::InvalidOption { key: "cron", reason } if reason.contains("never fires"))
        );
        // February 29th fires, every four years.
        valid(vec![worker("leap").cron("0 0 29 2 *")]);
    }

    #[test]
    fn a_name_shared_by_three_workers_is_reported_once_listing_the_other_locations() {
        let first = worker("sync");
        let second = worker("sync");
        let other = worker("other");
        let third = worker("sync");
        let locations = [&first, &second, &third].map(WorkerSpec::location);
        let problems = problems_of(vec![third, other, second, first]);
        assert_eq!(
            problems,
            vec![Problem::new(
                Some("sync".into()),
                Some(locations[0]),
                ProblemKind::DuplicateName { others: locations[1..].to_vec() }
            )]
        );
    }

    #[test]
    fn a_worker_with_an_invalid_option_still_takes_part_in_the_graph_checks() {
        let problems = problems_of(vec![worker("poll").interval(Duration::ZERO).depends_on("fetch")]);
        let kinds: Vec<_> = problems.into_iter().map(|p| p.kind).collect();
        assert!(matches!(kinds[0], ProblemKind::InvalidOption { key: "interval", .. }));
        assert!(matches!(kinds[1], ProblemKind::UnknownWorker { key: "depends_on", .. }));
        assert_eq!(kinds.len(), 2);
    }

    #[test]
    fn a_worker_with_invalid_options_still_counts_as_a_duplicate() {
        let valid = worker("sync");
        let refused = worker("sync").timeout(Duration::ZERO);
        let (first, second) = (valid.location(), refused.location());
        let problems = problems_of(vec![refused, valid]);
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].location, Some(first));
        assert_eq!(problems[0].kind, ProblemKind::DuplicateName { others: vec![second] });
        assert!(matches!(problems[1].kind, ProblemKind::InvalidOption { key: "timeout", .. }));
    }

    #[test]
    fn two_workers_with_invalid_options_and_one_name_are_still_duplicates() {
        let first = worker("sync").timeout(Duration::ZERO);
        let second = worker("sync").interval(Duration::ZERO);
        let (at_first, at_second) = (first.location(), second.location());
        let problems = problems_of(vec![second, first]);
        let duplicates: Vec<&Problem> =
            problems.iter().filter(|p| matches!(p.kind, ProblemKind::DuplicateName { .. })).collect();
        assert_eq!(
            duplicates,
            [&Problem::new(
                Some("sync".into()),
                Some(at_first),
                ProblemKind::DuplicateName { others: vec![at_second] }
            )]
        );
        assert_eq!(problems.len(), 3);
    }

    #[test]
    fn an_unknown_dependency_is_reported_with_the_closest_name() {
        let problems = problems_of(vec![worker("fetch_data"), worker("process_data").depends_on("fetch_dta")]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].worker.as_deref(), Some("process_data"));
        assert_eq!(
            problems[0].kind,
            ProblemKind::UnknownWorker {
                key: "depends_on",
                name: "fetch_dta".into(),
                did_you_mean: Some("fetch_data".into())
            }
        );
    }

    #[test]
    fn an_unknown_blocks_name_is_reported_under_blocks() {
        let kinds = kinds_of(vec![worker("cleanup").blocks("indexer"), worker("reindex")]);
        assert_eq!(
            kinds,
            vec![ProblemKind::UnknownWorker { key: "blocks", name: "indexer".into(), did_you_mean: None }]
        );
    }

    #[test]
    fn an_unknown_name_listed_twice_is_reported_once() {
        let kinds = kinds_of(vec![worker("a").depends_on("zzz").depends_on("zzz")]);
        assert_eq!(kinds.len(), 1);
    }

    #[test]
    fn a_suggestion_allows_about_one_edit_per_three_characters() {
        let names = ["fetch_data", "process_data", "cleanup", "db", "tenant-1-sync", "tenant-2-sync"];
        assert_eq!(did_you_mean("fecth_data", &names), Some("fetch_data"), "adjacent swap is one edit");
        assert_eq!(did_you_mean("proces_dat", &names), Some("process_data"));
        assert_eq!(did_you_mean("Cleanup", &names), Some("cleanup"), "case alone wins outright");
        assert_eq!(did_you_mean("dbs", &names), Some("db"));
        assert_eq!(did_you_mean("tenant-3-sync", &names), Some("tenant-1-sync"), "ties go to the first");
        assert_eq!(did_you_mean("tenant-42-cleanup", &names), None);
        assert_eq!(did_you_mean("fetch", &names), None);
        assert_eq!(did_you_mean("x", &["fetch_data"]), None);
    }

    #[test]
    fn suggestions_stop_once_their_budget_of_comparisons_is_spent() {
        let mut problems = Vec::new();
        let workers: Vec<WorkerConfig> =
            [worker("fetch_data"), worker("process_data")].into_iter().map(|s| s.check(&mut problems)).collect();
        let text = NameText::new(&workers);
        let sorted = text.sorted(&workers);
        let names = Names::new(&workers, &sorted, &mut problems);
        // Room for two searches among two names.
        let mut suggestions = Suggestions::new(&names, 4);
        assert_eq!(suggestions.for_unknown("fetch_dta").as_deref(), Some("fetch_data"));
        assert_eq!(suggestions.for_unknown("proces_data").as_deref(), Some("process_data"));
        assert_eq!(suggestions.for_unknown("fech_data"), None, "the budget is spent");
        assert_eq!(suggestions.for_unknown("fetch_dta").as_deref(), Some("fetch_data"), "known names cost nothing");
    }

    #[test]
    fn a_reference_to_a_worker_with_invalid_options_is_not_unknown() {
        let kinds = kinds_of(vec![worker("fetch").interval(Duration::ZERO), worker("process").depends_on("fetch")]);
        assert_eq!(kinds.len(), 1);
        assert!(matches!(kinds[0], ProblemKind::InvalidOption { key: "interval", .. }));
    }

    #[test]
    fn a_dependency_cycle_is_reported_once_as_a_path_from_its_first_name() {
        let specs = vec![
            worker("c").depends_on("a"),
            worker("b").depends_on("c"),
            worker("a").depends_on("b"),
            worker("d").depends_on("a"),
        ];
        let a = specs[2].location();
        let problems = problems_of(specs);
        assert_eq!(
            problems,
            vec![Problem::new(
                Some("a".into()),
                Some(a),
                ProblemKind::Cycle { path: ["a", "b", "c", "a"].map(String::from).to_vec() }
            )]
        );
    }

    #[test]
    fn a_component_with_several_cycles_is_reported_once_with_its_shortest_cycle_through_its_first_name() {
        // a -> b -> c -> d -> a and a -> d -> a share one component.
        let kinds = kinds_of(vec![
            worker("a").depends_on("b").depends_on("d"),
            worker("b").depends_on("c"),
            worker("c").depends_on("d"),
            worker("d").depends_on("a"),
        ]);
        assert_eq!(kinds, vec![ProblemKind::Cycle { path: ["a", "d", "a"].map(String::from).to_vec() }]);
    }

    #[test]
    fn two_separate_cycles_are_reported_separately() {
        let kinds = kinds_of(vec![
            worker("a").depends_on("b"),
            worker("b").depends_on("a"),
            worker("x").depends_on("y"),
            worker("y").depends_on("x"),
        ]);
        assert_eq!(
            kinds,
            vec![
                ProblemKind::Cycle { path: ["a", "b", "a"].map(String::from).to_vec() },
                ProblemKind::Cycle { path: ["x", "y", "x"].map(String::from).to_vec() },
            ]
        );
    }

    #[test]
    fn a_self_dependency_is_a_cycle_of_one_worker() {
        let depends_on = Adjacency { start: vec![0, 0, 1], targets: vec![1] };
        assert_eq!(dependency_cycles(&depends_on), vec![vec![1, 1]]);

        let kinds = kinds_of(vec![worker("a").depends_on("a")]);
        assert_eq!(kinds, [ProblemKind::Cycle { path: vec!["a".into(), "a".into()] }]);
    }

    #[test]
    fn blocks_never_make_a_cycle() {
        valid(vec![worker("a").blocks("b"), worker("b").blocks("a"), worker("c").depends_on("a").blocks("a")]);
    }

    #[test]
    fn depending_on_a_continuous_worker_is_reported() {
        let kinds = kinds_of(vec![worker("stream").mode(Mode::Continuous), worker("report").depends_on("stream")]);
        assert_eq!(kinds, vec![ProblemKind::ContinuousDependency { dependency: "stream".into() }]);
    }

    #[test]
    fn blocking_a_continuous_worker_is_allowed() {
        valid(vec![worker("stream").mode(Mode::Continuous), worker("compact").blocks("stream")]);
    }

    #[derive(Clone)]
    struct Database;

    #[derive(Clone)]
    struct Config;

    #[test]
    fn a_missing_state_names_the_type_and_the_registered_ones() {
        let spec = WorkerSpec::new("query", |_: State<Database>, _: State<Database>| async {});
        let mut states = StateMap::default();
        states.insert(Config);
        let problems = match validate(vec![spec], &states) {
            Ok(_) => panic!("the state is missing"),
            Err(error) => error.problems().to_vec(),
        };
        assert_eq!(
            problems.into_iter().map(|p| p.kind).collect::<Vec<_>>(),
            vec![ProblemKind::MissingState {
                type_name: std::any::type_name::<Database>(),
                registered: vec![std::any::type_name::<Config>()],
            }]
        );

        states.insert(Database);
        let spec = WorkerSpec::new("query", |_: State<Database>| async {});
        assert!(validate(vec![spec], &states).is_ok());
    }

    #[test]
    fn every_problem_is_reported_at_once_sorted_by_location() {
        let stream = worker("stream").mode(Mode::Continuous);
        let a = worker("a").depends_on("b").depends_on("stream");
        let b = worker("b").depends_on("a").blocks("nobody");
        let dup = worker("dup");
        let other_dup = worker("dup");
        let bad = worker("bad").retries(1).mode(Mode::Continuous);
        let stateful = WorkerSpec::new("stateful", |_: State<Config>| async {});
        let expected_locations = [&a, &a, &b, &dup, &bad, &stateful].map(WorkerSpec::location);
        let problems = problems_of(vec![stateful, bad, other_dup, dup, b, a, stream]);
        let kinds: Vec<&ProblemKind> = problems.iter().map(|p| &p.kind).collect();
        assert!(
            matches!(
                kinds[..],
                [
                    ProblemKind::Cycle { .. },
                    ProblemKind::ContinuousDependency { .. },
                    ProblemKind::UnknownWorker { key: "blocks", .. },
                    ProblemKind::DuplicateName { .. },
                    ProblemKind::InvalidOption { key: "retries", .. },
                    ProblemKind::MissingState { .. },
                ]
            ),
            "{kinds:#?}"
        );
        let locations: Vec<Option<Location>> = problems.iter().map(|p| p.location).collect();
        assert_eq!(locations, expected_locations.map(Some));
    }

    #[test]
    fn a_build_error_lists_a_cycle_and_an_unknown_name_with_did_you_mean() {
        let (a, a_line) = (worker("a").depends_on("b"), line!());
        let (b, b_line) = (worker("b").depends_on("a").depends_on("fetch_dta"), line!());
        let error = match validate_without_state(vec![b, worker("fetch_data"), a]) {
            Ok(_) => panic!("the graph should be invalid"),
            Err(error) => error,
        };
        let file = file!();
        assert_eq!(
            error.to_string(),
            format!(
                "2 problems in the worker graph:\n  \
                 - worker `a` ({file}:{a_line}): dependency cycle: a -> b -> a; remove one of these `depends_on`\n  \
                 - worker `b` ({file}:{b_line}): `depends_on` names `fetch_dta`, which is not a registered worker; \
                 did you mean `fetch_data`?"
            )
        );
    }

    #[test]
    fn edges_of_a_small_graph_are_sorted_deduplicated_and_symmetric() {
        let graph = valid(vec![
            worker("process").depends_on("fetch").depends_on("fetch").depends_on("auth"),
            worker("cleanup").blocks("process").blocks("fetch"),
            worker("fetch").depends_on("auth").blocks("process"),
            worker("auth"),
        ]);
        let names: Vec<&str> = graph.workers.iter().map(|w| &*w.name).collect();
        assert_eq!(names, ["auth", "cleanup", "fetch", "process"]);
        let [auth, cleanup, fetch, process] = [0, 1, 2, 3];
        assert_eq!(graph.edges[process].depends_on, [auth, fetch]);
        assert_eq!(graph.edges[auth].dependents, [fetch, process]);
        assert_eq!(graph.edges[process].conflicts, [auth, cleanup, fetch]);
        assert_eq!(graph.edges[fetch].conflicts, [auth, cleanup, process]);
        assert_eq!(graph.edges[cleanup].conflicts, [fetch, process]);
        assert_eq!(graph.edges[auth].conflicts, [fetch, process]);
        for (id, edges) in graph.edges.iter().enumerate() {
            for &other in &edges.conflicts {
                assert!(graph.edges[other].conflicts.contains(&id), "{id} conflicts with {other} one way only");
            }
            for &dependency in &edges.depends_on {
                assert!(graph.edges[dependency].dependents.contains(&id));
            }
        }
        assert_eq!(names_of(&graph, &graph.edges[fetch].dependents), ["process"]);
    }

    /// `n` workers with random acyclic dependencies (on average 2 per worker,
    /// on workers that come later in a shuffled order, so neither ids nor
    /// input order follow the dependency order) and a `blocks` for every
    /// other worker.
    fn generated_workers(n: usize, seed: u64) -> Vec<WorkerSpec> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let name = |i: usize| format!("worker-{i}");
        (0..n)
            .map(|position| {
                let mut spec = worker(&name(order[position])).interval(Duration::from_secs(60));
                if position + 1 < n {
                    for _ in 0..rng.usize(0..=4) {
                        spec = spec.depends_on(name(order[rng.usize(position + 1..n)]));
                    }
                }
                if rng.bool() {
                    let other = rng.usize(0..n);
                    if other != position {
                        spec = spec.blocks(name(order[other]));
                    }
                }
                spec
            })
            .collect()
    }

    fn timed_validation(n: usize) -> Duration {
        let specs = generated_workers(n, 7);
        let started = Instant::now();
        let graph = validate_without_state(specs);
        let elapsed = started.elapsed();
        let graph = match graph {
            Ok(graph) => graph,
            Err(error) => panic!("the generated graph should be valid, got: {error}"),
        };
        assert_eq!(graph.workers.len(), n);
        let edges: usize = graph.edges.iter().map(|e| e.depends_on.len()).sum();
        eprintln!("validated {n} workers with {edges} dependencies in {elapsed:?}");
        elapsed
    }

    #[test]
    fn ten_thousand_generated_workers_validate() {
        timed_validation(10_000);
    }

    /// Run with `cargo test -p orchestrator --release --lib graph -- --ignored --nocapture`.
    /// The first round is a cold start (fresh memory pages), the others reuse
    /// memory the previous round freed.
    #[test]
    #[ignore = "a timing run; meaningful in release mode only"]
    fn a_hundred_thousand_generated_workers_validate_well_under_200_ms_in_release() {
        let mut rounds: Vec<Duration> = (0..7).map(|_| timed_validation(100_000)).collect();
        let first = rounds[0];
        rounds.sort();
        let median = rounds[rounds.len() / 2];
        eprintln!("100,000 workers: first {first:?}, median {median:?}, fastest {:?}", rounds[0]);
        assert!(first < Duration::from_millis(200) && median < Duration::from_millis(200));
    }

    #[test]
    fn a_hundred_thousand_worker_chain_does_not_overflow_the_stack() {
        let n = 100_000;
        let name = |i: usize| format!("w{i:06}");
        let chain = |closed: bool| {
            (0..n).map(move |i| {
                let next = if i + 1 < n {
                    Some(i + 1)
                } else if closed {
                    Some(0)
                } else {
                    None
                };
                match next {
                    Some(next) => worker(&name(i)).depends_on(name(next)),
                    None => worker(&name(i)),
                }
            })
        };
        let graph = valid(chain(false).collect());
        assert_eq!(graph.edges[0].depends_on, [1]);

        let kinds = kinds_of(chain(true).collect());
        match &kinds[..] {
            [ProblemKind::Cycle { path }] => {
                assert_eq!(path.len(), n + 1);
                assert_eq!((path[0].as_str(), path[1].as_str(), path[n].as_str()), ("w000000", "w000001", "w000000"));
            }
            other => panic!("expected one cycle, got {other:?}"),
        }
    }
}
