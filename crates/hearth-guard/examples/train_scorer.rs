//! Trains the guard's neural scorer on recorded traffic and evaluates it.
//!
//! ```text
//! cargo run --release -p hearth-guard --example train_scorer -- \
//!     --data DIR --out models/guard-scorer/model.safetensors \
//!     [--leave-out TOOL] [--evaluate-loto] [--epochs N] [--seed S]
//! ```
//!
//! DIR holds one JSON-lines file of `RequestEvent`s per traffic source,
//! named `<tool>.jsonl`, as the server's `[guard] record` setting writes
//! them. [`TOOLS`] maps each tool to its category; a file of any other
//! name is an error. Within a file, requests are grouped by source address
//! and ordered by time, and every request closes one window: the source's
//! requests up to it, as the scorer would see them at that moment. Each
//! tool keeps at most `--max-windows` of its windows, evenly spaced in
//! time.
//!
//! The output model is trained on the first 80 % of each tool's windows
//! in time and tested on the last 20 %. Splitting by time, not at random,
//! keeps overlapping windows out of both sides. The program prints the
//! windows per tool, the confusion matrix on that test split, and, with
//! `--evaluate-loto`, a leave-one-tool-out table: one model per tool,
//! trained without it and tested on all of its windows. The tables are
//! Markdown for the model card.
//!
//! Training is deterministic for a given `--seed` and data: weights start
//! from a seeded generator, batches are shuffled by it, and nothing else
//! draws random numbers.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use clap::Parser;
use hearth_guard::RequestEvent;
use hearth_guard::features::{self, FEATURES, WINDOW, Window};
use hearth_guard::scorer::{Category, Network};

/// Tools whose traffic the data may hold, and the category of each.
/// Benign sources are household clients; every other tool is an attack
/// tool or an attack pattern driven by a script.
const TOOLS: [(&str, Category); 15] = [
    // Port, directory and vulnerability scanners.
    ("nmap", Category::Reconnaissance),
    ("ffuf", Category::Reconnaissance),
    ("gobuster", Category::Reconnaissance),
    ("dirb", Category::Reconnaissance),
    ("wfuzz", Category::Reconnaissance),
    ("nikto", Category::Reconnaissance),
    // Password and pairing-code guessing.
    ("hydra", Category::BruteForce),
    // Injection and traversal attacks.
    ("sqlmap", Category::Exploitation),
    ("wapiti", Category::Exploitation),
    // Slow headers and bodies that tie up connections.
    ("slowhttptest", Category::DenialOfService),
    // A scripted copy of the whole library with a valid session.
    ("massdownload", Category::Abuse),
    // Household clients.
    ("chromium", Category::Benign),
    ("ffmpeg", Category::Benign),
    ("mpv", Category::Benign),
    ("curl-benign", Category::Benign),
];

/// Trains the guard's neural scorer on recorded traffic.
#[derive(Debug, Parser)]
struct Args {
    /// Folder of `<tool>.jsonl` files of recorded requests.
    #[arg(long)]
    data: PathBuf,
    /// Where to write the trained weights (safetensors).
    #[arg(long)]
    out: Option<PathBuf>,
    /// A tool to leave out of training; the model is then tested on all of its windows.
    #[arg(long)]
    leave_out: Option<String>,
    /// Also train one model per tool without that tool and print the leave-one-tool-out table.
    #[arg(long)]
    evaluate_loto: bool,
    /// Passes over the training windows.
    #[arg(long, default_value_t = 12)]
    epochs: usize,
    /// Seed of the weight initialisation and the shuffling.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Most windows kept per tool, evenly spaced in time.
    #[arg(long, default_value_t = 6000)]
    max_windows: usize,
    /// Share of each tool's windows, the latest in time, kept for testing.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    keep_freed_memory();
    if let Some(tool) = &args.leave_out {
        category_of(tool).with_context(|| format!("--leave-out {tool}"))?;
    }

    let started = Instant::now();
    let dataset = Dataset::load(&args.data, args.max_windows)?;
    eprintln!("loaded {} windows from {} tools in {:.1} s", dataset.len(), dataset.tools.len(), started.elapsed().as_secs_f64());
    println!("{}", dataset.summary(args.holdout));

    if args.evaluate_loto {
        print_loto(&dataset, &args)?;
    }

    let (train, test) = dataset.split(args.holdout, args.leave_out.as_deref());
    eprintln!("training on {} windows, testing on {}", train.len(), test.len());
    let started = Instant::now();
    let (varmap, network) = train_network(&dataset, &train, args.epochs, args.seed)?;
    eprintln!("trained in {:.1} s", started.elapsed().as_secs_f64());

    let predictions = predict(&network, &dataset, &test)?;
    println!("{}", confusion_matrix(&dataset, &test, &predictions));
    println!("{}", per_tool_table(&dataset, &test, &predictions, "Held-out 20 % split, per tool"));
    if let Some(tool) = &args.leave_out {
        let left_out: Vec<usize> = dataset.windows_of(tool);
        let predictions = predict(&network, &dataset, &left_out)?;
        println!("{}", per_tool_table(&dataset, &left_out, &predictions, &format!("Left-out tool {tool}, all windows")));
    }

    if let Some(out) = &args.out {
        if let Some(folder) = out.parent().filter(|folder| !folder.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).with_context(|| format!("failed to create {}", folder.display()))?;
        }
        varmap.save(out).with_context(|| format!("failed to write the weights to {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

/// Asks glibc to keep freed blocks of up to 32 MiB in the heap instead of
/// returning them to the kernel. Candle allocates a fresh buffer of about a
/// megabyte for every operation of a training step; without this, half of
/// a step's time went to page faults (measured with `perf` on the 2-core
/// development machine).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds, and no other
    // thread allocates yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}

/// Returns the category of `tool`, or an error naming the known tools.
fn category_of(tool: &str) -> anyhow::Result<Category> {
    match TOOLS.iter().find(|(name, _)| *name == tool) {
        Some((_, category)) => Ok(*category),
        None => {
            let known: Vec<&str> = TOOLS.iter().map(|(name, _)| *name).collect();
            bail!("unknown tool {tool:?}: expected one of {}; add it to TOOLS in train_scorer.rs with its category", known.join(", "))
        }
    }
}

/// Every window of every tool, encoded once.
struct Dataset {
    /// Tool names, sorted.
    tools: Vec<String>,
    /// Per tool: requests read, sources seen, windows available before the cap.
    counts: Vec<(usize, usize, usize)>,
    /// Encoded windows, `WINDOW * FEATURES` values each.
    values: Vec<f32>,
    /// Per window: the index into `tools`.
    tool: Vec<usize>,
    /// Per window: the category.
    category: Vec<Category>,
}

impl Dataset {
    /// Reads every `*.jsonl` file in `folder` and encodes its windows.
    fn load(folder: &Path, max_windows: usize) -> anyhow::Result<Dataset> {
        let mut files = Vec::new();
        let entries = std::fs::read_dir(folder).with_context(|| format!("failed to list {}", folder.display()))?;
        for entry in entries {
            let path = entry.with_context(|| format!("failed to list {}", folder.display()))?.path();
            if path.extension().is_some_and(|extension| extension == "jsonl") {
                files.push(path);
            }
        }
        files.sort();
        if files.is_empty() {
            bail!("no <tool>.jsonl files in {}", folder.display());
        }

        let mut dataset = Dataset { tools: Vec::new(), counts: Vec::new(), values: Vec::new(), tool: Vec::new(), category: Vec::new() };
        for path in files {
            let tool = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default().to_owned();
            let category = category_of(&tool).with_context(|| format!("file {}", path.display()))?;
            let sources = read_sources(&path)?;
            dataset.add_tool(tool, category, &sources, max_windows);
        }
        Ok(dataset)
    }

    /// Encodes the windows of one tool, evenly spaced in time down to `max_windows`.
    fn add_tool(&mut self, tool: String, category: Category, sources: &BTreeMap<IpAddr, Vec<RequestEvent>>, max_windows: usize) {
        let index = self.tools.len();
        let requests: usize = sources.values().map(Vec::len).sum();

        // Each window ends at one request; order them by that request's time.
        let mut ends: Vec<(u64, &Vec<RequestEvent>, usize)> = Vec::with_capacity(requests);
        for events in sources.values() {
            for end in 1..=events.len() {
                ends.push((events[end - 1].at_ms, events, end));
            }
        }
        ends.sort_by_key(|(at_ms, _, _)| *at_ms);

        let kept = ends.len().min(max_windows);
        let mut window: Window = [[0.0; FEATURES]; WINDOW];
        for k in 0..kept {
            let (_, events, end) = ends[k * ends.len() / kept];
            features::encode_window(&events[end.saturating_sub(WINDOW + 1)..end], &mut window);
            self.values.extend_from_slice(window.as_flattened());
            self.tool.push(index);
            self.category.push(category);
        }
        self.counts.push((requests, sources.len(), ends.len()));
        self.tools.push(tool);
    }

    fn len(&self) -> usize {
        self.tool.len()
    }

    /// Returns the windows of `tool`, in time order.
    fn windows_of(&self, tool: &str) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.tools[self.tool[i]] == tool).collect()
    }

    /// Splits each tool's windows into training (earliest) and test (the
    /// latest `holdout` share). The tool named `leave_out` goes to neither.
    fn split(&self, holdout: f64, leave_out: Option<&str>) -> (Vec<usize>, Vec<usize>) {
        let mut train = Vec::new();
        let mut test = Vec::new();
        for tool in &self.tools {
            if Some(tool.as_str()) == leave_out {
                continue;
            }
            let windows = self.windows_of(tool);
            let cut = windows.len() - (windows.len() as f64 * holdout).round() as usize;
            train.extend_from_slice(&windows[..cut]);
            test.extend_from_slice(&windows[cut..]);
        }
        (train, test)
    }

    /// Returns a Markdown table of the data per tool.
    fn summary(&self, holdout: f64) -> String {
        let mut text = String::from("### Training data\n\n| tool | category | requests | sources | windows | windows used | train | test |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for (index, tool) in self.tools.iter().enumerate() {
            let (requests, sources, windows) = self.counts[index];
            let used = self.tool.iter().filter(|&&t| t == index).count();
            let test = (used as f64 * holdout).round() as usize;
            let category = category_of(tool).map(Category::as_str).unwrap_or("?");
            text += &format!("| {tool} | {category} | {requests} | {sources} | {windows} | {used} | {} | {test} |\n", used - test);
        }
        text
    }
}

/// Reads one JSON-lines file into requests per source, each in time order.
fn read_sources(path: &Path) -> anyhow::Result<BTreeMap<IpAddr, Vec<RequestEvent>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
    let mut sources: BTreeMap<IpAddr, Vec<RequestEvent>> = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event: RequestEvent =
            serde_json::from_str(line).with_context(|| format!("invalid request event at {}:{}", path.display(), number + 1))?;
        sources.entry(event.source).or_default().push(event);
    }
    for events in sources.values_mut() {
        events.sort_by_key(|event| event.at_ms);
    }
    Ok(sources)
}

/// Trains one model per tool without it and prints how each did on the left-out tool.
fn print_loto(dataset: &Dataset, args: &Args) -> anyhow::Result<()> {
    let mut text = String::from(
        "### Leave one tool out\n\nEach row is a model trained on every other tool (all of their windows) and tested on all windows of this one. \
         For a benign tool, the anomalous share is its false-alarm rate.\n\n\
         | left out | true category | windows | anomalous (≥ 0.5) | predicted most | share predicted most | correct category |\n\
         | --- | --- | ---: | ---: | --- | ---: | ---: |\n",
    );
    for tool in &dataset.tools {
        let left_out = dataset.windows_of(tool);
        let train: Vec<usize> = (0..dataset.len()).filter(|&i| dataset.tools[dataset.tool[i]] != *tool).collect();
        let started = Instant::now();
        let (_, network) = train_network(dataset, &train, args.epochs, args.seed)?;
        let predictions = predict(&network, dataset, &left_out)?;
        eprintln!("left out {tool}: trained in {:.1} s", started.elapsed().as_secs_f64());

        let truth = category_of(tool)?;
        let row = ToolRow::new(&left_out, &predictions, |_| truth);
        let note = if truth == Category::Benign { " (false alarms)" } else { "" };
        text += &format!(
            "| {tool} | {truth} | {} | {:.1} %{note} | {} | {:.1} % | {:.1} % |\n",
            left_out.len(),
            row.anomalous * 100.0,
            row.most,
            row.most_share * 100.0,
            row.correct * 100.0
        );
    }
    println!("{text}");
    Ok(())
}

/// One prediction: the anomaly probability and the category.
#[derive(Debug, Clone, Copy)]
struct Prediction {
    anomaly: f32,
    category: Category,
}

/// Shares over a set of windows of one tool.
struct ToolRow {
    anomalous: f64,
    most: Category,
    most_share: f64,
    correct: f64,
}

impl ToolRow {
    fn new(windows: &[usize], predictions: &[Prediction], truth: impl Fn(usize) -> Category) -> ToolRow {
        let total = windows.len().max(1) as f64;
        let anomalous = predictions.iter().filter(|p| p.anomaly >= 0.5).count() as f64 / total;
        let mut counts = [0usize; 6];
        for prediction in predictions {
            counts[prediction.category.index()] += 1;
        }
        let most = (0..6).max_by_key(|&i| (counts[i], usize::MAX - i)).unwrap_or(0);
        let correct = windows.iter().zip(predictions).filter(|(window, p)| p.category == truth(**window)).count() as f64 / total;
        ToolRow { anomalous, most: Category::ALL[most], most_share: counts[most] as f64 / total, correct }
    }
}

/// Returns a Markdown confusion matrix of `predictions` on `windows`.
fn confusion_matrix(dataset: &Dataset, windows: &[usize], predictions: &[Prediction]) -> String {
    let mut matrix = [[0usize; 6]; 6];
    for (window, prediction) in windows.iter().zip(predictions) {
        matrix[dataset.category[*window].index()][prediction.category.index()] += 1;
    }
    let correct: usize = (0..6).map(|i| matrix[i][i]).sum();

    let mut text = String::from("### Confusion matrix, held-out 20 % split\n\nRows: true category. Columns: predicted category.\n\n| true \\ predicted |");
    for category in Category::ALL {
        text += &format!(" {category} |");
    }
    text += " recall |\n| --- |";
    text += &" ---: |".repeat(7);
    text += "\n";
    for truth in Category::ALL {
        let row = matrix[truth.index()];
        let total: usize = row.iter().sum();
        if total == 0 {
            continue;
        }
        text += &format!("| {truth} |");
        for count in row {
            text += &format!(" {count} |");
        }
        text += &format!(" {:.1} % |\n", row[truth.index()] as f64 / total as f64 * 100.0);
    }
    text += &format!("\nAccuracy: {:.1} % of {} windows.\n", correct as f64 / windows.len().max(1) as f64 * 100.0, windows.len());
    text
}

/// Returns a Markdown table per tool of `predictions` on `windows`.
fn per_tool_table(dataset: &Dataset, windows: &[usize], predictions: &[Prediction], title: &str) -> String {
    let mut text = format!(
        "### {title}\n\n| tool | true category | windows | anomalous (≥ 0.5) | predicted most | correct category |\n| --- | --- | ---: | ---: | --- | ---: |\n"
    );
    for (index, tool) in dataset.tools.iter().enumerate() {
        let (mine, theirs): (Vec<usize>, Vec<Prediction>) =
            windows.iter().zip(predictions).filter(|(window, _)| dataset.tool[**window] == index).map(|(w, p)| (*w, *p)).unzip();
        if mine.is_empty() {
            continue;
        }
        let row = ToolRow::new(&mine, &theirs, |window| dataset.category[window]);
        let truth = dataset.category[mine[0]];
        text += &format!(
            "| {tool} | {truth} | {} | {:.1} % | {} | {:.1} % |\n",
            mine.len(),
            row.anomalous * 100.0,
            row.most,
            row.correct * 100.0
        );
    }
    text
}

/// Windows per batch.
const BATCH: usize = 256;

/// AdamW's learning rate at the start; it decays linearly to a tenth.
const LEARNING_RATE: f64 = 3e-3;

/// Trains a fresh network on `train` and returns its variables and the network.
fn train_network(dataset: &Dataset, train: &[usize], epochs: usize, seed: u64) -> anyhow::Result<(VarMap, Network)> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let network = Network::new(VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
    let mut random = SplitMix64(seed);
    initialise(&varmap, &mut random)?;

    let (category_weights, anomaly_weights) = loss_weights(dataset, train);
    let params = ParamsAdamW { lr: LEARNING_RATE, weight_decay: 1e-4, ..ParamsAdamW::default() };
    let mut optimizer = AdamW::new(varmap.all_vars(), params)?;

    let mut order = train.to_vec();
    let steps = epochs * order.len().div_ceil(BATCH);
    let mut step = 0;
    for epoch in 0..epochs {
        random.shuffle(&mut order);
        let mut total_loss = 0.0;
        let mut batches = 0;
        for batch in order.chunks(BATCH) {
            let progress = step as f64 / steps.max(1) as f64;
            optimizer.set_learning_rate(LEARNING_RATE * (1.0 - 0.9 * progress));
            step += 1;

            let (inputs, categories, anomalies, category_weight, anomaly_weight) =
                batch_tensors(dataset, batch, &category_weights, &anomaly_weights, &device)?;
            let (anomaly_logits, category_logits) = network.forward(&inputs)?;
            let loss = (weighted_cross_entropy(&category_logits, &categories, &category_weight)?
                + weighted_binary_cross_entropy(&anomaly_logits, &anomalies, &anomaly_weight)?)?;
            optimizer.backward_step(&loss)?;
            total_loss += loss.to_scalar::<f32>()?;
            batches += 1;
        }
        eprintln!("  epoch {:>2}: loss {:.4}", epoch + 1, total_loss / batches.max(1) as f32);
    }
    Ok((varmap, network))
}

/// Returns per-window weights for the category loss and the anomaly loss.
///
/// Category loss: every category present counts the same in total, and
/// within a category every tool counts the same, so a tool with few
/// windows weighs as much as one with many. Anomaly loss: benign and
/// attack windows count half each, tools balanced the same way within.
fn loss_weights(dataset: &Dataset, train: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let mut per_tool = vec![0usize; dataset.tools.len()];
    for &window in train {
        per_tool[dataset.tool[window]] += 1;
    }
    let mut tools_in_category = [0usize; 6];
    for (index, &count) in per_tool.iter().enumerate() {
        if count > 0 {
            let category = category_of(&dataset.tools[index]).expect("every loaded tool is in TOOLS");
            tools_in_category[category.index()] += 1;
        }
    }
    let categories = tools_in_category.iter().filter(|&&tools| tools > 0).count().max(1) as f64;
    let attack_categories = tools_in_category[1..].iter().filter(|&&tools| tools > 0).count().max(1) as f64;

    let mut category_weights = vec![0.0f32; dataset.len()];
    let mut anomaly_weights = vec![0.0f32; dataset.len()];
    for &window in train {
        let category = dataset.category[window];
        let tool_windows = per_tool[dataset.tool[window]] as f64;
        let tools = tools_in_category[category.index()] as f64;
        let tool_share = 1.0 / (tools * tool_windows);
        category_weights[window] = (tool_share / categories * train.len() as f64) as f32;
        let side = if category == Category::Benign { 0.5 } else { 0.5 / attack_categories };
        anomaly_weights[window] = (tool_share * side * train.len() as f64) as f32;
    }
    (category_weights, anomaly_weights)
}

type Batch = (Tensor, Tensor, Tensor, Tensor, Tensor);

/// Gathers one batch: inputs, category labels, anomaly targets and both weights.
fn batch_tensors(dataset: &Dataset, batch: &[usize], category_weights: &[f32], anomaly_weights: &[f32], device: &Device) -> anyhow::Result<Batch> {
    let size = WINDOW * FEATURES;
    let mut values = Vec::with_capacity(batch.len() * size);
    for &window in batch {
        values.extend_from_slice(&dataset.values[window * size..(window + 1) * size]);
    }
    let labels: Vec<u32> = batch.iter().map(|&window| dataset.category[window].index() as u32).collect();
    let anomalies: Vec<f32> = batch.iter().map(|&window| if dataset.category[window] == Category::Benign { 0.0 } else { 1.0 }).collect();
    let category_weight: Vec<f32> = batch.iter().map(|&window| category_weights[window]).collect();
    let anomaly_weight: Vec<f32> = batch.iter().map(|&window| anomaly_weights[window]).collect();
    let n = batch.len();
    Ok((
        Tensor::from_vec(values, (n, WINDOW, FEATURES), device)?,
        Tensor::from_vec(labels, n, device)?,
        Tensor::from_vec(anomalies, n, device)?,
        Tensor::from_vec(category_weight, n, device)?,
        Tensor::from_vec(anomaly_weight, n, device)?,
    ))
}

/// Cross-entropy of `logits` `[n, 6]` against `labels` `[n]`, weighted per window.
fn weighted_cross_entropy(logits: &Tensor, labels: &Tensor, weights: &Tensor) -> candle_core::Result<Tensor> {
    let log_probabilities = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = log_probabilities.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
    let total = (picked * weights)?.sum_all()?.neg()?;
    total / weights.dims1()? as f64
}

/// Binary cross-entropy of `logits` `[n]` against `targets` in {0, 1}, weighted per window.
/// Uses `max(x, 0) - x y + ln(1 + e^-|x|)`, which stays finite for large logits.
fn weighted_binary_cross_entropy(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let losses = ((logits.relu()? - (logits * targets)?)? + softplus)?;
    (losses * weights)?.sum_all()? / weights.dims1()? as f64
}

/// Runs `network` on `windows` and returns one prediction each.
fn predict(network: &Network, dataset: &Dataset, windows: &[usize]) -> anyhow::Result<Vec<Prediction>> {
    let size = WINDOW * FEATURES;
    let mut predictions = Vec::with_capacity(windows.len());
    for batch in windows.chunks(1024) {
        let mut values = Vec::with_capacity(batch.len() * size);
        for &window in batch {
            values.extend_from_slice(&dataset.values[window * size..(window + 1) * size]);
        }
        let inputs = Tensor::from_vec(values, (batch.len(), WINDOW, FEATURES), &Device::Cpu)?;
        let (anomaly_logits, category_logits) = network.forward(&inputs)?;
        let anomalies = candle_nn::ops::sigmoid(&anomaly_logits)?.to_vec1::<f32>()?;
        let categories = category_logits.argmax(1)?.to_vec1::<u32>()?;
        for (anomaly, category) in anomalies.into_iter().zip(categories) {
            predictions.push(Prediction { anomaly, category: Category::ALL[category as usize] });
        }
    }
    Ok(predictions)
}

/// Sets every variable from the seeded generator: Kaiming-uniform weights
/// (bound `sqrt(6 / fan_in)`, for ReLU layers) and biases uniform in
/// `±1 / sqrt(fan_in)`, the layer's own fan-in. Candle's CPU generator
/// cannot be seeded, so the initial values it drew are replaced.
fn initialise(varmap: &VarMap, random: &mut SplitMix64) -> anyhow::Result<()> {
    let shapes: BTreeMap<String, Vec<usize>> = Network::tensor_shapes().into_iter().collect();
    let variables = varmap.data().lock().map_err(|_| anyhow::anyhow!("the variable map's lock is poisoned"))?;
    for (name, shape) in &shapes {
        let variable = variables.get(name).with_context(|| format!("the network has no variable {name}"))?;
        let weight_name = name.replace(".bias", ".weight");
        let fan_in: usize = shapes[&weight_name][1..].iter().product();
        let bound = if name.ends_with(".weight") { (6.0 / fan_in as f64).sqrt() } else { 1.0 / (fan_in as f64).sqrt() };
        let count: usize = shape.iter().product();
        let values: Vec<f32> = (0..count).map(|_| ((random.next_unit() * 2.0 - 1.0) * bound) as f32).collect();
        variable.set(&Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?)?;
    }
    Ok(())
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a small generator whose
/// output depends on the seed alone, on every platform and Rust version.
struct SplitMix64(u64);

impl SplitMix64 {
    fn shuffle(&mut self, items: &mut [usize]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a value uniform in `[0, 1)`.
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
