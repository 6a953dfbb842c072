//! The simulation of one customer's receivables history.
//!
//! Each customer has a hidden risk that moves over time: most are stable, some
//! deteriorate from a random date on, some recover. The risk at each invoice's due date
//! drives whether it is paid on time, late (and how late), partly, or never (then written
//! off as bad debt 180 days past due). Collectors email, call and write; calls obtain
//! promises to pay, which low-risk customers keep and high-risk customers break. Some
//! invoices are disputed; disputes end in payment or in a credit. Everything a snapshot
//! shows is derived from these events, so the tables reconcile to the cent.
//!
//! Dates are days since 1970-01-01 (Arrow's Date32); money is in cents.

use arrayvec::ArrayVec;

use super::rng::Rng;

/// The four customer segments of the contract.
pub const SEGMENTS: [&str; 4] = ["enterprise", "mid_market", "small_business", "consumer"];

/// Regions and the currency their customers are invoiced in.
pub const REGIONS: [(&str, &str); 4] = [
    ("north_america", "USD"),
    ("europe", "EUR"),
    ("uk", "GBP"),
    ("apac", "AUD"),
];

/// Grace in days within which a payment still counts as keeping a promise.
pub const PROMISE_GRACE_DAYS: i32 = 3;
/// Days past due at which an unpaid invoice is written off as bad debt.
pub const WRITE_OFF_DPD: i32 = 180;
/// A promise stays on the open item for this many days after its promise date.
pub const PROMISE_VISIBLE_DAYS: i32 = 30;

/// Per-segment behaviour.
struct SegmentProfile {
    weight: f64,
    invoices_per_month: f64,
    median_amount: f64,
    terms: &'static [i32],
    base_risk: f64,
    high_profile: f64,
}

const PROFILES: [SegmentProfile; 4] = [
    SegmentProfile {
        weight: 0.05,
        invoices_per_month: 40.0,
        median_amount: 6_000.0,
        terms: &[30, 45, 60],
        base_risk: 0.05,
        high_profile: 0.30,
    },
    SegmentProfile {
        weight: 0.15,
        invoices_per_month: 15.0,
        median_amount: 1_500.0,
        terms: &[30, 45],
        base_risk: 0.09,
        high_profile: 0.04,
    },
    SegmentProfile {
        weight: 0.40,
        invoices_per_month: 6.0,
        median_amount: 350.0,
        terms: &[15, 30],
        base_risk: 0.14,
        high_profile: 0.005,
    },
    SegmentProfile {
        weight: 0.40,
        invoices_per_month: 2.5,
        median_amount: 70.0,
        terms: &[15, 30],
        base_risk: 0.18,
        high_profile: 0.0,
    },
];

const FIRST_NAMES: [&str; 24] = [
    "Ada", "Bruno", "Chen", "Dana", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kofi",
    "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor",
    "Wen", "Yara",
];
const LAST_NAMES: [&str; 24] = [
    "Abe", "Berg", "Costa", "Duval", "Eklund", "Fischer", "Garcia", "Haas", "Ivanova", "Jensen",
    "Kowalski", "Laine", "Moreau", "Novak", "Okafor", "Petrov", "Quist", "Rossi", "Silva",
    "Tanaka", "Ueda", "Varga", "Weber", "Zhou",
];
const NAME_STEMS: [&str; 24] = [
    "Northwind",
    "Bluepeak",
    "Cedar",
    "Delta",
    "Evergreen",
    "Falcon",
    "Granite",
    "Harbor",
    "Ironwood",
    "Juniper",
    "Keystone",
    "Lakeside",
    "Meridian",
    "Nimbus",
    "Orchard",
    "Pioneer",
    "Quarry",
    "Riverbend",
    "Summit",
    "Tidewater",
    "Union",
    "Vantage",
    "Westfield",
    "Zenith",
];
const NAME_TRADES: [&str; 16] = [
    "Logistics",
    "Foods",
    "Systems",
    "Builders",
    "Textiles",
    "Pharma",
    "Motors",
    "Energy",
    "Software",
    "Retail",
    "Metals",
    "Print",
    "Media",
    "Labs",
    "Supply",
    "Outfitters",
];
const NAME_FORMS: [&str; 6] = ["Inc", "Ltd", "GmbH", "LLC", "SA", "Pty"];

/// Collectors and supervisors of the generated team.
#[derive(Debug, Clone)]
pub struct Collector {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub daily_capacity: i32,
    pub segments: Vec<&'static str>,
}

/// The collections team for `customers` customers: one collector per ~350 customers (at
/// least four, so every segment is covered twice) and one supervisor per five collectors.
pub fn collectors(seed: u64, customers: u64) -> Vec<Collector> {
    let mut rng = Rng::for_stream(seed, u64::MAX);
    let n_collectors = customers.div_ceil(350).max(4);
    let n_supervisors = n_collectors.div_ceil(5);
    // Coverage patterns: each collector works one or two neighbouring segments.
    let patterns: [&[&str]; 4] = [
        &["enterprise", "mid_market"],
        &["mid_market", "small_business"],
        &["small_business", "consumer"],
        &["consumer"],
    ];
    let mut team = Vec::new();
    for i in 0..n_collectors + n_supervisors {
        let supervisor = i >= n_collectors;
        let name = format!("{} {}", rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES));
        team.push(Collector {
            id: if supervisor {
                format!("S{:04}", i - n_collectors + 1)
            } else {
                format!("K{:04}", i + 1)
            },
            name,
            role: if supervisor {
                "supervisor"
            } else {
                "collector"
            },
            daily_capacity: if supervisor {
                rng.range(15, 25) as i32
            } else {
                rng.range(30, 60) as i32
            },
            segments: if supervisor {
                SEGMENTS.to_vec()
            } else {
                patterns[(i % 4) as usize].to_vec()
            },
        });
    }
    team
}

/// The fixed facts of the simulated world.
#[derive(Debug, Clone)]
pub struct World {
    pub seed: u64,
    /// First day invoices may be issued (six months before the first snapshot's month).
    pub history_start: i32,
    /// Snapshot dates (month ends), ascending; the last is the end of history.
    pub snapshots: Vec<i32>,
    /// Collectors (not supervisors) covering each segment, by segment index.
    pub collectors_by_segment: [Vec<String>; 4],
}

impl World {
    /// The last day of history: nothing dated later is written.
    pub fn end(&self) -> i32 {
        *self.snapshots.last().expect("at least one snapshot")
    }
}

/// One customer's static profile.
#[derive(Debug, Clone, Default)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub segment: usize,
    pub region: usize,
    pub terms: i32,
    pub collector_id: Option<String>,
    pub since: i32,
    pub high_profile: bool,
    /// The day fraud was first suspected, if ever.
    pub fraud_from: Option<i32>,
    /// Credit limit in cents, and the day it was halved after deterioration, if ever.
    pub credit_limit: i64,
    pub limit_cut_from: Option<i32>,
    risk: RiskPath,
}

impl Customer {
    /// Credit limit in cents on `day`.
    pub fn credit_limit_on(&self, day: i32) -> i64 {
        match self.limit_cut_from {
            Some(cut) if day >= cut => round_to(self.credit_limit / 2, 100_000).max(100_000),
            _ => self.credit_limit,
        }
    }

    /// Whether fraud is suspected on `day`.
    pub fn fraud_suspected_on(&self, day: i32) -> bool {
        self.fraud_from.is_some_and(|f| day >= f)
    }

    /// ISO currency code.
    pub fn currency(&self) -> &'static str {
        REGIONS[self.region].1
    }
}

/// A customer's contact person, phone and e-mail, and when its credit line is reviewed:
/// drawn from a stream of their own, so adding them changed no other generated value.
#[derive(Debug, Clone)]
pub struct Contact {
    pub name: String,
    pub phone: String,
    pub email: String,
    /// First credit review (days since 1970) and the review interval in days.
    review_from: i32,
    review_every: i32,
}

/// The salt of the contacts' random streams.
const CONTACT_STREAMS: u64 = 0x0063_6f6e_7461_6374;

impl Contact {
    /// The contact of customer `c` (its `index`-th, 0-based) of the world with `seed`.
    pub fn of(seed: u64, index: u64, c: &Customer) -> Contact {
        let mut rng = Rng::for_stream(seed ^ CONTACT_STREAMS, index);
        let name = if c.segment == 3 {
            c.name.clone()
        } else {
            format!("{} {}", rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES))
        };
        let country = ["+1", "+49", "+44", "+61"][c.region];
        let phone = format!(
            "{country} {:03} {:04} {:03}",
            rng.range(200, 999),
            rng.range(0, 9999),
            rng.range(0, 999)
        );
        let slug = |s: &str| -> String {
            s.chars()
                .filter(|ch| ch.is_ascii_alphanumeric() || *ch == ' ')
                .collect::<String>()
                .to_ascii_lowercase()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(".")
        };
        // Reserved example domains (RFC 2606): never a real mailbox.
        let domain = if c.segment == 3 {
            "mail.example".to_string()
        } else {
            let company: Vec<&str> = c.name.split_whitespace().collect();
            format!(
                "{}.example",
                slug(&company[..company.len().saturating_sub(1)].join(" ")).replace('.', "-")
            )
        };
        let email = format!("{}@{domain}", slug(&name));
        let review_every = if rng.chance(0.6) { 365 } else { 730 };
        let review_from = c.since + rng.range(30, 365) as i32;
        Contact {
            name,
            phone,
            email,
            review_from,
            review_every,
        }
    }

    /// The last credit review on or before `day`, if any yet.
    pub fn last_review_on(&self, day: i32) -> Option<i32> {
        (day >= self.review_from).then(|| {
            self.review_from + (day - self.review_from) / self.review_every * self.review_every
        })
    }
}

/// How the hidden risk moves over time.
#[derive(Debug, Clone, Copy, Default)]
enum RiskPath {
    #[default]
    Stable,
    /// Risk ramps up over 180 days from `from`.
    Deteriorating { from: i32 },
    /// Risk was high and falls back over 180 days from `from`.
    Recovering { from: i32, high: f64 },
}

/// A simulated invoice and everything that happens to it.
#[derive(Debug, Clone, Default)]
pub struct Invoice {
    pub seq: u32,
    pub invoice_date: i32,
    pub due_date: i32,
    pub amount: i64,
    /// Payments (date, cents), at most two, ascending by date.
    pub payments: ArrayVec<(i32, i64), 2>,
    /// Write-off (date, cents, reason).
    pub write_off: Option<(i32, i64, &'static str)>,
    /// Dispute opened and resolved (resolution may lie after the end of history).
    pub dispute: Option<(i32, i32)>,
    /// Promises made on this invoice (one per call, two calls at most):
    /// (activity date, promise date, cents).
    pub promises: ArrayVec<(i32, i32, i64), 2>,
    /// The day the balance reached zero (i32::MAX when it never did).
    pub closed: i32,
}

impl Invoice {
    /// Open balance in cents at the end of `day`.
    pub fn open_on(&self, day: i32) -> i64 {
        let paid: i64 = self
            .payments
            .iter()
            .filter(|(d, _)| *d <= day)
            .map(|(_, a)| a)
            .sum();
        let written: i64 = self
            .write_off
            .filter(|(d, _, _)| *d <= day)
            .map_or(0, |(_, a, _)| a);
        self.amount - paid - written
    }

    /// Whether a dispute is open at the end of `day`.
    pub fn disputed_on(&self, day: i32) -> bool {
        self.dispute
            .is_some_and(|(from, to)| from <= day && day < to)
    }

    /// The promise shown on the open item at `day`: the latest one made on or before
    /// `day` whose promise date is no more than [`PROMISE_VISIBLE_DAYS`] behind.
    pub fn promise_on(&self, day: i32) -> Option<(i32, i64)> {
        self.promises
            .iter()
            .rev()
            .find(|(made, promised, _)| *made <= day && promised + PROMISE_VISIBLE_DAYS >= day)
            .map(|(_, promised, amount)| (*promised, *amount))
    }
}

/// A collection activity.
#[derive(Debug, Clone)]
pub struct Activity {
    pub date: i32,
    pub invoice_seq: u32,
    pub kind: &'static str,
    pub by_collector: bool,
    pub outcome: &'static str,
    pub promise: Option<(i32, i64)>,
}

/// Everything simulated for one customer.
#[derive(Debug, Default)]
pub struct History {
    pub customer: Customer,
    pub invoices: Vec<Invoice>,
    pub activities: Vec<Activity>,
}

fn round_to(cents: i64, step: i64) -> i64 {
    (cents + step / 2) / step * step
}

/// Simulates customer number `index` (0-based) into `out`, reusing its buffers.
pub fn simulate(world: &World, index: u64, out: &mut History) {
    let mut rng = Rng::for_stream(world.seed, index);
    out.invoices.clear();
    out.activities.clear();
    // The order of the steps is the order of the random draws: keep it.
    let (profile, base) = draw_customer(world, index, &mut rng, &mut out.customer);
    let path = out.customer.risk;
    let (since, terms) = (out.customer.since, out.customer.terms);
    let end = world.end();

    // Invoices: Poisson per 30-day period from the later of history start and customer since.
    let mut day = world.history_start.max(since);
    let mut seq = 0u32;
    while day <= end {
        let month_len = 30;
        let n = rng.poisson(profile.invoices_per_month);
        let mut dates: Vec<i32> = (0..n)
            .map(|_| day + rng.range(0, month_len - 1) as i32)
            .filter(|d| *d <= end)
            .collect();
        dates.sort_unstable();
        for invoice_date in dates {
            seq += 1;
            let cents = (profile.median_amount * (0.9 * rng.normal()).exp() * 100.0).round();
            let amount = (cents as i64).max(500);
            let due_date = invoice_date + terms;
            let invoice = simulate_invoice(
                &mut rng,
                seq,
                invoice_date,
                due_date,
                amount,
                risk_on(path, base, due_date),
                end,
                &mut out.activities,
            );
            out.invoices.push(invoice);
        }
        day += month_len as i32;
    }
    out.activities.sort_by_key(|a| (a.date, a.invoice_seq));
}

/// Draws customer number `index`'s master data and hidden risk path into `c`; returns
/// its segment's profile and its base risk.
fn draw_customer(
    world: &World,
    index: u64,
    rng: &mut Rng,
    c: &mut Customer,
) -> (&'static SegmentProfile, f64) {
    let end = world.end();
    let segment = rng.pick_weighted(&[
        (0, PROFILES[0].weight),
        (1, PROFILES[1].weight),
        (2, PROFILES[2].weight),
        (3, PROFILES[3].weight),
    ]);
    let profile = &PROFILES[segment];
    let region = rng.pick_weighted(&[(0, 0.55), (1, 0.25), (2, 0.10), (3, 0.10)]);
    c.id = format!("C{:07}", index + 1);
    c.name = if segment == 3 {
        format!("{} {}", rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES))
    } else {
        format!(
            "{} {} {}",
            rng.pick(&NAME_STEMS),
            rng.pick(&NAME_TRADES),
            rng.pick(&NAME_FORMS)
        )
    };
    c.segment = segment;
    c.region = region;
    c.terms = *rng.pick(profile.terms);
    let span = end - world.history_start;
    // 88 % are customers of long standing, the rest join during the window (starters).
    c.since = if rng.chance(0.88) {
        world.history_start - rng.range(0, 10 * 365) as i32
    } else {
        world.history_start + rng.range(0, span as i64 - 20) as i32
    };
    c.high_profile = rng.chance(profile.high_profile);
    let team = &world.collectors_by_segment[segment];
    c.collector_id = (rng.chance(0.85) && !team.is_empty()).then(|| rng.pick(team).clone());

    // Hidden risk: log-normal around the segment's base, then a path over time.
    let base = (profile.base_risk * (0.7 * rng.normal()).exp()).clamp(0.01, 0.9);
    let path_draw = rng.uniform();
    let turn = world.history_start + rng.range(0, span as i64) as i32;
    c.risk = if path_draw < 0.12 {
        RiskPath::Deteriorating { from: turn }
    } else if path_draw < 0.20 {
        RiskPath::Recovering {
            from: turn,
            high: rng.range(55, 90) as f64 / 100.0,
        }
    } else {
        RiskPath::Stable
    };
    c.fraud_from = rng
        .chance(0.004)
        .then(|| world.history_start + rng.range(0, span as i64) as i32);
    let monthly_sales = profile.invoices_per_month * profile.median_amount * 1.5 * 100.0;
    c.credit_limit = round_to((2.0 * monthly_sales) as i64, 100_000).max(100_000);
    c.limit_cut_from = match c.risk {
        RiskPath::Deteriorating { from } if from + 120 <= end => Some(from + 120),
        _ => None,
    };
    (profile, base)
}

/// The hidden risk on `day` of a customer with base risk `base` on `path`.
fn risk_on(path: RiskPath, base: f64, day: i32) -> f64 {
    match path {
        RiskPath::Stable => base,
        RiskPath::Deteriorating { from } => {
            let t = ((day - from) as f64 / 180.0).clamp(0.0, 1.0);
            base + (0.92 - base) * t
        }
        RiskPath::Recovering { from, high } => {
            let t = ((day - from) as f64 / 180.0).clamp(0.0, 1.0);
            high + (base - high) * t
        }
    }
}

/// Simulates one invoice's life: payment, dispute, dunning, promises, write-off.
#[allow(clippy::too_many_arguments)]
fn simulate_invoice(
    rng: &mut Rng,
    seq: u32,
    invoice_date: i32,
    due_date: i32,
    amount: i64,
    risk: f64,
    end: i32,
    activities: &mut Vec<Activity>,
) -> Invoice {
    let invoice = Invoice {
        seq,
        invoice_date,
        due_date,
        amount,
        closed: i32::MAX,
        ..Invoice::default()
    };
    let mut life = InvoiceLife {
        rng,
        invoice,
        risk,
        end,
        activities,
        defaults: false,
        pay_day: None,
        credited: false,
        promise_activities: ArrayVec::new(),
    };
    // The order of the steps is the order of the random draws: keep it.
    life.payment_day();
    life.dispute();
    life.dunning();
    life.payments();
    life.settle_promises();
    life.cut_at_end();
    life.invoice
}

/// An invoice being simulated, with what its later steps depend on.
struct InvoiceLife<'a> {
    rng: &'a mut Rng,
    invoice: Invoice,
    risk: f64,
    end: i32,
    activities: &'a mut Vec<Activity>,
    /// Never going to be paid.
    defaults: bool,
    /// The day the remaining balance is paid (None: never).
    pay_day: Option<i32>,
    /// Credited in full after a dispute.
    credited: bool,
    /// Positions in `activities` of this invoice's promises.
    promise_activities: ArrayVec<usize, 2>,
}

impl InvoiceLife<'_> {
    /// Records an activity on this invoice.
    fn activity(
        &mut self,
        date: i32,
        kind: &'static str,
        outcome: &'static str,
        by_collector: bool,
    ) {
        self.activities.push(Activity {
            date,
            invoice_seq: self.invoice.seq,
            kind,
            by_collector,
            outcome,
            promise: None,
        });
    }

    /// Whether the customer defaults, and else when it pays.
    fn payment_day(&mut self) {
        let (invoice_date, due_date, risk) =
            (self.invoice.invoice_date, self.invoice.due_date, self.risk);
        self.defaults = self.rng.chance(0.003 + 0.30 * risk.powi(3));
        self.pay_day = if self.defaults {
            None
        } else if self.rng.chance((0.92 - 0.9 * risk).max(0.05)) {
            let fraction = terms_fraction(self.rng);
            Some(invoice_date + (fraction * (due_date - invoice_date) as f64) as i32)
        } else {
            Some(due_date + 1 + self.rng.exponential(4.0 + 75.0 * risk * risk) as i32)
        };
    }

    /// Disputes (never on invoices that are simply not going to be paid).
    fn dispute(&mut self) {
        if self.defaults || !self.rng.chance(0.012 + 0.03 * self.risk) {
            return;
        }
        let opened = self.invoice.invoice_date + self.rng.range(3, 35) as i32;
        let resolved = opened + 10 + self.rng.exponential(25.0) as i32;
        self.invoice.dispute = Some((opened, resolved));
        self.activity(opened, "dispute", "opened", false);
        if resolved <= self.end {
            self.activity(resolved, "note", "dispute_resolved", true);
        }
        if self.rng.chance(0.35) {
            self.credited = true;
            self.pay_day = None;
            self.invoice.write_off = Some((resolved, self.invoice.amount, "dispute_credit"));
        } else {
            let after = resolved + self.rng.range(1, 10) as i32;
            self.pay_day = self.pay_day.map(|p| p.max(after));
        }
    }

    /// Dunning: reminder email, calls with promises, a letter, escalation.
    fn dunning(&mut self) {
        let due_date = self.invoice.due_date;
        let settled = if self.credited {
            self.invoice.write_off.map(|w| w.0)
        } else {
            self.pay_day
        };
        let overdue_until = settled.unwrap_or(due_date + WRITE_OFF_DPD);
        if overdue_until > due_date + 3 {
            self.activity(due_date + 3, "email", "sent", true);
        }
        for call_dpd in [12, 40] {
            self.call(due_date + call_dpd);
        }
        let (pay_day, credited) = (self.pay_day, self.credited);
        if overdue_until > due_date + 60 && pay_day.is_none_or(|p| p > due_date + 60) && !credited {
            self.activity(due_date + 60, "letter", "sent", true);
        }
        if pay_day.is_none() && !credited {
            self.activity(due_date + 95, "note", "escalated", true);
        }
    }

    /// A collection call around `day`: no answer, reached, or a promise to pay.
    fn call(&mut self, day: i32) {
        let call_day = day + self.rng.range(0, 8) as i32;
        let still_open = self.pay_day.is_none_or(|p| p > call_day) && !self.credited;
        if !still_open || self.invoice.disputed_on(call_day) {
            return;
        }
        if self.rng.chance(0.35) {
            self.activity(call_day, "call", "no_answer", true);
            return;
        }
        if !self.rng.chance(0.6) {
            self.activity(call_day, "call", "reached", true);
            return;
        }
        let promised = call_day + self.rng.range(3, 14) as i32;
        // The promise is for the balance open on the call day, known once the payments
        // are simulated; the amount is filled in by `settle_promises`.
        let promise_amount = self.invoice.amount;
        self.invoice
            .promises
            .push((call_day, promised, promise_amount));
        self.promise_activities.push(self.activities.len());
        self.activities.push(Activity {
            date: call_day,
            invoice_seq: self.invoice.seq,
            kind: "promise",
            by_collector: true,
            outcome: "promised",
            promise: Some((promised, promise_amount)),
        });
        // Reliable customers keep their word; risky ones (and defaulters) do not.
        if self.pay_day.is_some() && self.rng.chance((0.9 - self.risk).max(0.05)) {
            let kept_day = call_day + self.rng.range(1, (promised - call_day) as i64) as i32;
            self.pay_day = self.pay_day.map(|p| p.min(kept_day));
        }
    }

    /// Payments: sometimes in two installments; defaulters sometimes pay a part first.
    fn payments(&mut self) {
        let (invoice_date, due_date, amount) = (
            self.invoice.invoice_date,
            self.invoice.due_date,
            self.invoice.amount,
        );
        let invoice = &mut self.invoice;
        let rng = &mut *self.rng;
        match self.pay_day {
            Some(day) => {
                if rng.chance(0.10) && day > invoice_date + 2 {
                    let first =
                        round_to(amount * rng.range(30, 70) / 100, 100).clamp(1, amount - 1);
                    let first_day =
                        invoice_date + rng.range(1, (day - invoice_date - 1) as i64) as i32;
                    invoice.payments.push((first_day, first));
                    invoice.payments.push((day, amount - first));
                } else {
                    invoice.payments.push((day, amount));
                }
                invoice.closed = day;
            }
            None if !self.credited => {
                let mut left = amount;
                if rng.chance(0.3) {
                    let part = round_to(amount * rng.range(20, 60) / 100, 100).clamp(1, amount - 1);
                    invoice
                        .payments
                        .push((due_date + rng.range(5, 90) as i32, part));
                    left -= part;
                }
                let written = due_date + WRITE_OFF_DPD;
                invoice.write_off = Some((written, left, "bad_debt"));
                invoice.closed = written;
            }
            None => invoice.closed = invoice.write_off.map_or(i32::MAX, |w| w.0),
        }
    }

    /// Each promise is for what was still open on the day it was made.
    fn settle_promises(&mut self) {
        let invoice = &mut self.invoice;
        let open_at_promise: ArrayVec<i64, 2> = invoice
            .promises
            .iter()
            .map(|p| invoice.open_on(p.0).max(1))
            .collect();
        for ((promise, &activity), open) in invoice
            .promises
            .iter_mut()
            .zip(&self.promise_activities)
            .zip(open_at_promise)
        {
            promise.2 = open;
            self.activities[activity].promise = Some((promise.1, open));
        }
    }

    /// Nothing after the end of history exists yet.
    fn cut_at_end(&mut self) {
        let (invoice, end) = (&mut self.invoice, self.end);
        invoice.payments.retain(|(d, _)| *d <= end);
        if invoice.write_off.is_some_and(|(d, _, _)| d > end) {
            invoice.write_off = None;
        }
        invoice.promises.retain(|(made, _, _)| *made <= end);
        self.activities.retain(|a| a.date <= end);
        if invoice.closed > end {
            invoice.closed = i32::MAX;
        }
    }
}

/// How far into the payment terms an on-time payer pays (most pay near the due date).
fn terms_fraction(rng: &mut Rng) -> f64 {
    1.0 - rng.uniform().powi(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_deterministic_reachable_and_reviews_follow_their_cycle() {
        let w = world();
        let mut h = History::default();
        for index in 0..40 {
            simulate(&w, index, &mut h);
            let c = Contact::of(w.seed, index, &h.customer);
            let again = Contact::of(w.seed, index, &h.customer);
            assert_eq!(
                (&c.name, &c.phone, &c.email),
                (&again.name, &again.phone, &again.email)
            );
            assert!(
                c.email.ends_with(".example") && c.email.contains('@'),
                "{c:?}"
            );
            assert!(c.phone.starts_with('+'), "{c:?}");
            if h.customer.segment == 3 {
                assert_eq!(c.name, h.customer.name, "a consumer is their own contact");
            }
            assert_eq!(c.last_review_on(c.review_from - 1), None);
            assert_eq!(c.last_review_on(c.review_from), Some(c.review_from));
            let later = c.review_from + c.review_every + 10;
            assert_eq!(
                c.last_review_on(later),
                Some(c.review_from + c.review_every)
            );
        }
    }

    fn world() -> World {
        World {
            seed: 3,
            history_start: 20_000,
            snapshots: (1..=12).map(|m| 20_180 + m * 30).collect(),
            collectors_by_segment: Default::default(),
        }
    }

    #[test]
    fn invoices_reconcile_and_never_go_negative() {
        let w = world();
        let mut h = History::default();
        for i in 0..300 {
            simulate(&w, i, &mut h);
            for inv in &h.invoices {
                assert!(inv.due_date >= inv.invoice_date);
                for &s in &w.snapshots {
                    let open = inv.open_on(s);
                    assert!(open >= 0 && open <= inv.amount, "{inv:?} at {s}");
                    if s >= inv.closed {
                        assert_eq!(open, 0, "{inv:?} closed at {} but open at {s}", inv.closed);
                    }
                }
                for &(made, _, promised) in &inv.promises {
                    assert!(promised > 0 && promised <= inv.amount, "{inv:?}");
                    assert!(
                        inv.open_on(made) == 0 || promised == inv.open_on(made),
                        "{inv:?}"
                    );
                }
                let total: i64 = inv.payments.iter().map(|p| p.1).sum::<i64>()
                    + inv.write_off.map_or(0, |w| w.1);
                assert!(total <= inv.amount);
                if inv.closed != i32::MAX {
                    assert_eq!(total, inv.amount);
                }
            }
        }
    }

    #[test]
    fn same_index_same_history() {
        let w = world();
        let (mut a, mut b) = (History::default(), History::default());
        simulate(&w, 17, &mut a);
        simulate(&w, 17, &mut b);
        assert_eq!(format!("{:?}", a.invoices), format!("{:?}", b.invoices));
        assert_eq!(a.customer.name, b.customer.name);
    }

    #[test]
    fn promises_are_both_kept_and_broken() {
        let w = world();
        let mut h = History::default();
        let (mut kept, mut broken) = (0, 0);
        for i in 0..2000 {
            simulate(&w, i, &mut h);
            for inv in &h.invoices {
                for &(_, promised, _) in &inv.promises {
                    if promised + PROMISE_GRACE_DAYS > w.end() {
                        continue;
                    }
                    if inv.closed <= promised + PROMISE_GRACE_DAYS {
                        kept += 1;
                    } else {
                        broken += 1;
                    }
                }
            }
        }
        assert!(kept > 50 && broken > 50, "kept {kept}, broken {broken}");
    }
}
