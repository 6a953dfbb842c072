//! The warehouse contract (DOMAIN.md §2): which tables exist, how they are stored and
//! which columns, with which Arrow types, each one must have.
//!
//! The generator writes exactly these schemas and [`crate::warehouse::Warehouse`] checks
//! every file against them when a warehouse is opened.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// Precision and scale of every money column: `Decimal128(18, 2)`.
pub const MONEY_PRECISION: u8 = 18;
/// Scale of every money column (cents).
pub const MONEY_SCALE: i8 = 2;
/// The Arrow type of every money column.
pub const MONEY: DataType = DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE);

/// Name of the hive partition column of snapshot tables (`snapshot_date=YYYY-MM-DD`).
pub const SNAPSHOT_COLUMN: &str = "snapshot_date";

/// The column a table's files may declare themselves sorted by (Parquet
/// `sorting_columns`, which `arq generate` writes): when every file of a table declares
/// it and the row groups' statistics agree, the warehouse tells DataFusion, so that
/// per-customer aggregates stream instead of hashing every customer at once.
pub const SORT_COLUMN: &str = "customer_id";

/// A column a table's files may also be in ascending order of, taken alone: invoice
/// identifiers, which `arq generate` writes in customer order and, within a customer, in
/// order (`INV-0000042-0001`, `INV-0000042-0002`, ...). Parquet's `sorting_columns` says
/// only how rows sort lexicographically (by customer, then by invoice), not that the
/// second column alone is in order; the generator checks that as it writes and, where it
/// held, names the column under the file's key-value metadata [`ASCENDING_KEY`]. The
/// warehouse then declares both orders (each checked against the row groups' statistics),
/// and joins on invoice ids walk instead of hashing ([`crate::key_order_join`]).
pub const INVOICE_ORDER_COLUMN: &str = "invoice_id";

/// Key of a file's key-value metadata listing (comma-separated) the columns the file's
/// rows are in ascending order of, each alone, as its writer checked them.
pub const ASCENDING_KEY: &str = "arq.ascending";

/// How a table is stored and how it changes over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// One hive partition per snapshot date: `TABLE/snapshot_date=YYYY-MM-DD/*.parquet`.
    Snapshot,
    /// Append-only events: `TABLE/*.parquet`.
    Events,
    /// Slowly changing reference data: `TABLE/*.parquet`.
    Reference,
}

impl TableKind {
    /// The word used in the docs and in `\d` listings.
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::Snapshot => "snapshot",
            TableKind::Events => "events",
            TableKind::Reference => "reference",
        }
    }
}

/// One table of the contract.
#[derive(Debug, Clone)]
pub struct TableContract {
    /// Table name, also the name of its folder in the warehouse.
    pub name: &'static str,
    /// How the table is stored.
    pub kind: TableKind,
    /// The columns stored in the Parquet files (without the partition column).
    pub schema: SchemaRef,
    /// One line for `\d` and the README.
    pub description: &'static str,
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}
fn date(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Date32, nullable)
}
fn money(name: &str, nullable: bool) -> Field {
    Field::new(name, MONEY, nullable)
}
fn boolean(name: &str) -> Field {
    Field::new(name, DataType::Boolean, false)
}
fn int32(name: &str) -> Field {
    Field::new(name, DataType::Int32, false)
}

/// `customers`: one row per customer per snapshot.
pub fn customers_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("customer_id", false),
        utf8("name", false),
        utf8("segment", false),
        utf8("region", false),
        utf8("currency", false),
        money("credit_limit", false),
        int32("payment_terms_days"),
        utf8("collector_id", true),
        date("customer_since", false),
        boolean("high_profile"),
        boolean("fraud_suspected"),
        utf8("contact_name", true),
        utf8("contact_phone", true),
        utf8("contact_email", true),
        date("last_credit_review", true),
    ]))
}

/// Columns a warehouse may leave out: absent from a file, they read as NULL. The
/// collectors' contact and the credit desk's last review are not in every ERP export.
pub const OPTIONAL_COLUMNS: [&str; 4] = [
    "contact_name",
    "contact_phone",
    "contact_email",
    "last_credit_review",
];

/// `open_items`: every invoice with an open balance, per snapshot.
pub fn open_items_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("invoice_id", false),
        utf8("customer_id", false),
        date("invoice_date", false),
        date("due_date", false),
        utf8("currency", false),
        money("amount", false),
        money("open_amount", false),
        boolean("disputed"),
        date("promise_date", true),
        money("promise_amount", true),
    ]))
}

/// `invoices`: every invoice ever issued (credit sales).
pub fn invoices_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("invoice_id", false),
        utf8("customer_id", false),
        date("invoice_date", false),
        date("due_date", false),
        utf8("currency", false),
        money("amount", false),
    ]))
}

/// `payments`: cash applied to invoices.
pub fn payments_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("payment_id", false),
        utf8("invoice_id", false),
        utf8("customer_id", false),
        date("payment_date", false),
        money("amount", false),
    ]))
}

/// `activities`: collection work (calls, emails, letters, promises, disputes, notes).
pub fn activities_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("activity_id", false),
        utf8("customer_id", false),
        utf8("invoice_id", true),
        date("activity_date", false),
        utf8("kind", false),
        utf8("collector_id", true),
        utf8("outcome", true),
        date("promise_date", true),
        money("promise_amount", true),
    ]))
}

/// `collectors`: the collections team.
pub fn collectors_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("collector_id", false),
        utf8("name", false),
        utf8("role", false),
        int32("daily_capacity"),
        Field::new(
            "segments",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
    ]))
}

/// `write_offs`: balances written off as bad debt or credited after a dispute.
///
/// Not in DOMAIN.md's table list, which nonetheless needs write-offs for the model's
/// label ("reaches 90+ DPD or is written off"); arq keeps them as their own event table
/// so that `open_amount = amount − payments − write_offs` reconciles to the cent.
pub fn write_offs_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("write_off_id", false),
        utf8("invoice_id", false),
        utf8("customer_id", false),
        date("write_off_date", false),
        money("amount", false),
        utf8("reason", false),
    ]))
}

/// Every table of the contract, in the order they are listed to users.
pub fn tables() -> Vec<TableContract> {
    vec![
        TableContract {
            name: "customers",
            kind: TableKind::Snapshot,
            schema: customers_schema(),
            description: "customer master data, credit limit and flags, per snapshot",
        },
        TableContract {
            name: "open_items",
            kind: TableKind::Snapshot,
            schema: open_items_schema(),
            description: "invoices with an open balance, per snapshot",
        },
        TableContract {
            name: "invoices",
            kind: TableKind::Events,
            schema: invoices_schema(),
            description: "every invoice issued (credit sales)",
        },
        TableContract {
            name: "payments",
            kind: TableKind::Events,
            schema: payments_schema(),
            description: "cash applied to invoices",
        },
        TableContract {
            name: "activities",
            kind: TableKind::Events,
            schema: activities_schema(),
            description: "calls, emails, letters, promises to pay, disputes and notes",
        },
        TableContract {
            name: "write_offs",
            kind: TableKind::Events,
            schema: write_offs_schema(),
            description: "balances written off (reason bad_debt or dispute_credit)",
        },
        TableContract {
            name: "collectors",
            kind: TableKind::Reference,
            schema: collectors_schema(),
            description: "collectors and supervisors with daily capacity and segments",
        },
    ]
}

/// Whether a type found in a file satisfies the type the contract asks for.
///
/// Strings may be stored as any of Arrow's string types (writers differ); everything
/// else, money above all, must match exactly.
pub fn type_satisfies(found: &DataType, wanted: &DataType) -> bool {
    let is_string =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    match (found, wanted) {
        (f, w) if is_string(w) => is_string(f),
        (DataType::List(f) | DataType::LargeList(f), DataType::List(w)) => {
            type_satisfies(f.data_type(), w.data_type())
        }
        (f, w) => f == w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_unique() {
        let mut names: Vec<_> = tables().iter().map(|t| t.name).collect();
        let before = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), before);
    }

    #[test]
    fn strings_accept_every_string_type_money_does_not_bend() {
        assert!(type_satisfies(&DataType::Utf8View, &DataType::Utf8));
        assert!(type_satisfies(&DataType::LargeUtf8, &DataType::Utf8));
        assert!(!type_satisfies(&DataType::Float64, &MONEY));
        assert!(!type_satisfies(&DataType::Decimal128(18, 4), &MONEY));
        assert!(type_satisfies(&MONEY, &MONEY));
        let list_view = DataType::List(Arc::new(Field::new("x", DataType::Utf8View, true)));
        let wanted = collectors_schema().field(4).data_type().clone();
        assert!(type_satisfies(&list_view, &wanted));
        assert!(!type_satisfies(&DataType::Utf8, &wanted));
    }
}
