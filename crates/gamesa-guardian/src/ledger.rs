//! The central bank: a double-entry credit ledger with per-epoch minting, a hoarding
//! cap, escrow per order, settlement of fills and refunds.
//!
//! # Invariants
//! - every movement of credits is one [`Posting`] from one account to another; the
//!   mint is the only source of new credits and the burn sink the only way out, so
//!   `sum(available) + sum(escrowed) == minted - burned` at all times
//! - an operation that returns an error has changed nothing (no balance, no escrow, no
//!   journal entry)
//! - every amount is a `u64` and every debit is checked before it is posted, so no
//!   balance is ever negative; no credit can overflow because every balance is bounded
//!   by `minted`, itself checked against overflow when minting
//! - an escrow holds exactly `limit_price * quantity` for its remaining quantity, and an
//!   account's `escrowed` is the sum of the escrows of the orders it owns

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use gamesa_proto::{AgentId, Credits, Fill, OrderId, Price, Quantity};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How much is minted and how much may be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerConfig {
    /// Credits minted per epoch, shared among agents in proportion to their weight.
    pub allowance_per_epoch: Credits,
    /// An agent keeps at most this many epochs of its own allowance (available plus
    /// escrowed); the excess is burned at each mint. Values below 1 count as 1.
    pub cap_epochs: u64,
}

impl Default for LedgerConfig {
    fn default() -> LedgerConfig {
        LedgerConfig {
            allowance_per_epoch: Credits(1_000_000),
            cap_epochs: 4,
        }
    }
}

/// An account a posting moves credits from or to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountRef {
    /// The source of every credit.
    Mint,
    /// The sink of every credit taken out of circulation.
    Burn,
    /// An agent's spendable balance.
    Available(AgentId),
    /// The credits a bid set aside until it fills, is cancelled or expires.
    Escrow(OrderId),
}

impl fmt::Display for AccountRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountRef::Mint => f.write_str("mint"),
            AccountRef::Burn => f.write_str("burn"),
            AccountRef::Available(agent) => write!(f, "{agent}"),
            AccountRef::Escrow(order) => write!(f, "escrow:{order}"),
        }
    }
}

/// One movement of credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub from: AccountRef,
    pub to: AccountRef,
    pub amount: Credits,
}

/// An agent's balances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalance {
    /// Spendable now.
    pub available: Credits,
    /// Set aside by the agent's resting bids.
    pub escrowed: Credits,
    /// What the last epoch minted for it; the cap is a multiple of this.
    pub allowance: Credits,
}

/// The credits one bid set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escrow {
    pub owner: AgentId,
    /// The bid's limit price: what each remaining unit has set aside.
    pub limit_price: Price,
    /// The quantity still unfilled and not refunded.
    pub quantity: Quantity,
    /// `limit_price * quantity`.
    pub amount: Credits,
}

/// What settling one fill moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillSettlement {
    /// `fill.price * fill.quantity`, from the buyer's escrow to the seller.
    pub paid: Credits,
    /// `(limit_price - fill.price) * fill.quantity`, from the escrow back to the buyer.
    pub refunded: Credits,
    /// What the buy order still has in escrow.
    pub escrow_left: Credits,
}

/// What one epoch's mint did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintReport {
    pub epoch: u64,
    pub minted: Credits,
    /// Burned by the hoarding cap.
    pub burned: Credits,
    /// Each weighted agent's allowance, in agent order.
    pub allowances: Vec<(AgentId, Credits)>,
}

/// A ledger operation that was refused. The ledger is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum LedgerError {
    #[error("{agent} needs {needed} credits but has {available} available")]
    InsufficientBalance {
        agent: AgentId,
        needed: Credits,
        available: Credits,
    },
    #[error("no escrow for {order}")]
    UnknownEscrow { order: OrderId },
    #[error("{order} already has an escrow")]
    DuplicateEscrow { order: OrderId },
    #[error("escrow of {order} belongs to {owner}, not to the buyer {buyer}")]
    EscrowOwnerMismatch {
        order: OrderId,
        owner: AgentId,
        buyer: AgentId,
    },
    #[error("fill of {order} at {fill_price} is above its limit price {limit_price}")]
    FillAboveLimit {
        order: OrderId,
        fill_price: Price,
        limit_price: Price,
    },
    #[error("{quantity} units of {order} exceed the {escrowed} still in escrow")]
    ExceedsEscrow {
        order: OrderId,
        quantity: Quantity,
        escrowed: Quantity,
    },
    #[error("price {price} or quantity {quantity} is outside the valid range")]
    InvalidAmount { price: Price, quantity: Quantity },
    #[error("epoch {epoch} was already minted (last minted: {last})")]
    EpochNotAfter { epoch: u64, last: u64 },
    #[error("{agent} appears twice in the mint weights")]
    DuplicateAgent { agent: AgentId },
    #[error("minting {amount} more credits would overflow the supply")]
    SupplyOverflow { amount: Credits },
}

/// The double-entry credit ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    config: LedgerConfig,
    accounts: BTreeMap<AgentId, AccountBalance>,
    escrows: BTreeMap<OrderId, Escrow>,
    /// Total ever drawn from [`AccountRef::Mint`].
    minted: u64,
    /// Total ever posted to [`AccountRef::Burn`].
    burned: u64,
    last_epoch: Option<u64>,
    /// Postings not yet drained, oldest first.
    journal: Vec<Posting>,
}

fn valid_amount(price: Price, quantity: Quantity) -> Result<Credits, LedgerError> {
    if Price::checked(price.0).is_err() || Quantity::checked(quantity.0).is_err() {
        return Err(LedgerError::InvalidAmount { price, quantity });
    }
    // Validated, so `price * quantity` fits in a u64 (see `Price::MAX`).
    Ok(Credits::cost(price, quantity))
}

impl Ledger {
    pub fn new(config: LedgerConfig) -> Ledger {
        Ledger {
            config: LedgerConfig {
                cap_epochs: config.cap_epochs.max(1),
                ..config
            },
            accounts: BTreeMap::new(),
            escrows: BTreeMap::new(),
            minted: 0,
            burned: 0,
            last_epoch: None,
            journal: Vec::new(),
        }
    }

    pub fn config(&self) -> LedgerConfig {
        self.config
    }

    /// A reloaded config's allowance and cap, from the next mint on; balances, escrows
    /// and the supply are untouched.
    pub fn set_config(&mut self, config: LedgerConfig) {
        self.config = LedgerConfig {
            cap_epochs: config.cap_epochs.max(1),
            ..config
        };
    }

    /// Opens an empty account (idempotent). Accounts also open on their first credit.
    pub fn open_account(&mut self, agent: AgentId) {
        self.accounts.entry(agent).or_default();
    }

    /// Credits agents with what a previous run left them (a snapshot's holdings, its
    /// bids' escrow included: their orders did not survive the restart), minted anew
    /// so that the supply still balances. Accounts are opened as needed. All or
    /// nothing: a total that would overflow the supply changes nothing.
    pub fn resume(&mut self, holdings: &[(AgentId, Credits)]) -> Result<Credits, LedgerError> {
        let total = holdings
            .iter()
            .map(|(_, credits)| credits.0)
            .fold(0u64, u64::saturating_add);
        if total == u64::MAX || self.minted.checked_add(total).is_none() {
            return Err(LedgerError::SupplyOverflow {
                amount: Credits(total),
            });
        }
        // Posting from the mint counts the credits as minted.
        for (agent, credits) in holdings {
            self.post(AccountRef::Mint, AccountRef::Available(*agent), credits.0);
        }
        Ok(Credits(total))
    }

    /// Mints one epoch's allowance, shared in proportion to `weights`, then burns what
    /// each account holds beyond `cap_epochs` times its new allowance (accounts without
    /// a weight get no allowance, so their whole available balance is burned).
    ///
    /// Shares are `allowance * weight / total_weight`, rounded down; the credits left
    /// over go one each to the largest remainders, ties to the lower agent id. With no
    /// weight at all nothing is minted.
    pub fn mint_epoch(
        &mut self,
        epoch: u64,
        weights: &[(AgentId, u64)],
    ) -> Result<MintReport, LedgerError> {
        if let Some(last) = self.last_epoch
            && epoch <= last
        {
            return Err(LedgerError::EpochNotAfter { epoch, last });
        }
        let mut seen = BTreeSet::new();
        for (agent, _) in weights {
            if !seen.insert(*agent) {
                return Err(LedgerError::DuplicateAgent { agent: *agent });
            }
        }
        let allowances = self.shares(weights);
        let amount: u64 = allowances.values().sum();
        if self.minted.checked_add(amount).is_none() {
            return Err(LedgerError::SupplyOverflow {
                amount: Credits(amount),
            });
        }

        for (agent, share) in &allowances {
            self.open_account(*agent);
            self.post(AccountRef::Mint, AccountRef::Available(*agent), *share);
        }
        let mut burned = 0;
        let agents: Vec<AgentId> = self.accounts.keys().copied().collect();
        for agent in agents {
            let allowance = allowances.get(&agent).copied().unwrap_or(0);
            let cap = allowance.saturating_mul(self.config.cap_epochs);
            let Some(account) = self.accounts.get_mut(&agent) else {
                continue;
            };
            account.allowance = Credits(allowance);
            let held = account.available.0.saturating_add(account.escrowed.0);
            let excess = held.saturating_sub(cap).min(account.available.0);
            self.post(AccountRef::Available(agent), AccountRef::Burn, excess);
            burned += excess;
        }
        self.last_epoch = Some(epoch);
        Ok(MintReport {
            epoch,
            minted: Credits(amount),
            burned: Credits(burned),
            allowances: allowances
                .into_iter()
                .map(|(agent, share)| (agent, Credits(share)))
                .collect(),
        })
    }

    /// Largest-remainder shares of this epoch's allowance.
    fn shares(&self, weights: &[(AgentId, u64)]) -> BTreeMap<AgentId, u64> {
        let allowance = u128::from(self.config.allowance_per_epoch.0);
        let total: u128 = weights.iter().map(|(_, weight)| u128::from(*weight)).sum();
        if total == 0 {
            return weights.iter().map(|(agent, _)| (*agent, 0)).collect();
        }
        let mut shares = BTreeMap::new();
        let mut remainders = Vec::with_capacity(weights.len());
        let mut given: u128 = 0;
        for (agent, weight) in weights {
            let exact = allowance * u128::from(*weight);
            let share = exact / total;
            given += share;
            // share <= allowance, which is a u64.
            shares.insert(*agent, u64::try_from(share).unwrap_or(u64::MAX));
            remainders.push((exact % total, *agent));
        }
        // Largest remainder first, then the lower agent id.
        remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let left = usize::try_from(allowance - given).unwrap_or(usize::MAX);
        for (_, agent) in remainders.into_iter().take(left) {
            if let Some(share) = shares.get_mut(&agent) {
                *share += 1;
            }
        }
        shares
    }

    /// Sets aside `limit_price * quantity` of `agent`'s balance for its bid `order`.
    /// Returns the amount escrowed.
    pub fn escrow(
        &mut self,
        order: OrderId,
        agent: AgentId,
        limit_price: Price,
        quantity: Quantity,
    ) -> Result<Credits, LedgerError> {
        let amount = valid_amount(limit_price, quantity)?;
        if self.escrows.contains_key(&order) {
            return Err(LedgerError::DuplicateEscrow { order });
        }
        let available = self.account(agent).unwrap_or_default().available;
        if amount > available {
            return Err(LedgerError::InsufficientBalance {
                agent,
                needed: amount,
                available,
            });
        }
        self.escrows.insert(
            order,
            Escrow {
                owner: agent,
                limit_price,
                quantity,
                amount: Credits(0),
            },
        );
        self.post(
            AccountRef::Available(agent),
            AccountRef::Escrow(order),
            amount.0,
        );
        Ok(amount)
    }

    /// Settles a fill against the buy order's escrow: `fill.price * quantity` goes to
    /// the seller, and the difference to the limit price goes back to the buyer.
    pub fn settle_fill(&mut self, fill: &Fill) -> Result<FillSettlement, LedgerError> {
        let order = fill.buy_order;
        let escrow = *self
            .escrows
            .get(&order)
            .ok_or(LedgerError::UnknownEscrow { order })?;
        if escrow.owner != fill.buyer {
            return Err(LedgerError::EscrowOwnerMismatch {
                order,
                owner: escrow.owner,
                buyer: fill.buyer,
            });
        }
        let paid = valid_amount(fill.price, fill.quantity)?;
        if fill.quantity > escrow.quantity {
            return Err(LedgerError::ExceedsEscrow {
                order,
                quantity: fill.quantity,
                escrowed: escrow.quantity,
            });
        }
        if fill.price > escrow.limit_price {
            return Err(LedgerError::FillAboveLimit {
                order,
                fill_price: fill.price,
                limit_price: escrow.limit_price,
            });
        }
        // Both validated: limit_price * quantity fits, and is at least `paid`.
        let released = Credits::cost(escrow.limit_price, fill.quantity).0;
        let refunded = released - paid.0;
        self.post(
            AccountRef::Escrow(order),
            AccountRef::Available(fill.seller),
            paid.0,
        );
        self.post(
            AccountRef::Escrow(order),
            AccountRef::Available(fill.buyer),
            refunded,
        );
        let escrow_left = self.shrink_escrow(order, fill.quantity);
        Ok(FillSettlement {
            paid,
            refunded: Credits(refunded),
            escrow_left,
        })
    }

    /// Returns the escrow of `quantity` unfilled units of `order` to its owner (a cancel,
    /// an expiry, or a fill the guardian denied). Returns the amount refunded.
    pub fn refund(&mut self, order: OrderId, quantity: Quantity) -> Result<Credits, LedgerError> {
        let escrow = *self
            .escrows
            .get(&order)
            .ok_or(LedgerError::UnknownEscrow { order })?;
        if quantity > escrow.quantity {
            return Err(LedgerError::ExceedsEscrow {
                order,
                quantity,
                escrowed: escrow.quantity,
            });
        }
        // quantity <= escrow.quantity, so this is at most escrow.amount.
        let amount = Credits::cost(escrow.limit_price, quantity).0;
        self.post(
            AccountRef::Escrow(order),
            AccountRef::Available(escrow.owner),
            amount,
        );
        self.shrink_escrow(order, quantity);
        Ok(Credits(amount))
    }

    /// Returns everything still in escrow for `order` to its owner.
    pub fn refund_all(&mut self, order: OrderId) -> Result<Credits, LedgerError> {
        let quantity = self
            .escrows
            .get(&order)
            .ok_or(LedgerError::UnknownEscrow { order })?
            .quantity;
        self.refund(order, quantity)
    }

    /// Lowers an escrow's quantity after its credits were posted out; removes it when
    /// nothing is left. Returns what it still holds.
    fn shrink_escrow(&mut self, order: OrderId, quantity: Quantity) -> Credits {
        let Some(escrow) = self.escrows.get_mut(&order) else {
            return Credits(0);
        };
        escrow.quantity = Quantity(escrow.quantity.0.saturating_sub(quantity.0));
        let left = escrow.amount;
        if escrow.quantity.0 == 0 {
            self.escrows.remove(&order);
        }
        left
    }

    /// Moves `amount` from one account to another and journals it. Callers check that
    /// the source holds `amount` first, so the subtraction never saturates; additions
    /// cannot overflow because every balance is at most `minted`, which `mint_epoch`
    /// keeps within `u64`.
    fn post(&mut self, from: AccountRef, to: AccountRef, amount: u64) {
        if amount == 0 {
            return;
        }
        debug_assert!(from != AccountRef::Burn, "burned credits never move");
        debug_assert!(to != AccountRef::Mint, "nothing is posted back to the mint");
        match from {
            AccountRef::Mint => self.minted = self.minted.saturating_add(amount),
            AccountRef::Burn => {}
            AccountRef::Available(agent) => {
                let account = self.accounts.entry(agent).or_default();
                debug_assert!(account.available.0 >= amount);
                account.available.0 = account.available.0.saturating_sub(amount);
            }
            AccountRef::Escrow(order) => self.move_escrowed(order, amount, false),
        }
        match to {
            AccountRef::Mint => {}
            AccountRef::Burn => self.burned = self.burned.saturating_add(amount),
            AccountRef::Available(agent) => {
                let account = self.accounts.entry(agent).or_default();
                account.available.0 = account.available.0.saturating_add(amount);
            }
            AccountRef::Escrow(order) => self.move_escrowed(order, amount, true),
        }
        self.journal.push(Posting {
            from,
            to,
            amount: Credits(amount),
        });
    }

    /// Credits or debits an escrow and its owner's `escrowed` total together.
    fn move_escrowed(&mut self, order: OrderId, amount: u64, credit: bool) {
        debug_assert!(
            self.escrows.contains_key(&order),
            "an escrow is created before it is posted to"
        );
        let Some(escrow) = self.escrows.get_mut(&order) else {
            return;
        };
        let account = self.accounts.entry(escrow.owner).or_default();
        if credit {
            escrow.amount.0 = escrow.amount.0.saturating_add(amount);
            account.escrowed.0 = account.escrowed.0.saturating_add(amount);
        } else {
            debug_assert!(escrow.amount.0 >= amount && account.escrowed.0 >= amount);
            escrow.amount.0 = escrow.amount.0.saturating_sub(amount);
            account.escrowed.0 = account.escrowed.0.saturating_sub(amount);
        }
    }

    pub fn account(&self, agent: AgentId) -> Option<AccountBalance> {
        self.accounts.get(&agent).copied()
    }

    /// Every account, in agent order.
    pub fn accounts(&self) -> impl Iterator<Item = (AgentId, AccountBalance)> + '_ {
        self.accounts
            .iter()
            .map(|(agent, balance)| (*agent, *balance))
    }

    pub fn escrow_for(&self, order: OrderId) -> Option<&Escrow> {
        self.escrows.get(&order)
    }

    /// Every open escrow, in order-id order.
    pub fn escrows(&self) -> impl Iterator<Item = (OrderId, &Escrow)> {
        self.escrows.iter().map(|(order, escrow)| (*order, escrow))
    }

    pub fn minted(&self) -> Credits {
        Credits(self.minted)
    }

    pub fn burned(&self) -> Credits {
        Credits(self.burned)
    }

    pub fn last_epoch(&self) -> Option<u64> {
        self.last_epoch
    }

    /// Credits in circulation: `minted - burned`.
    pub fn supply(&self) -> Credits {
        Credits(self.minted.saturating_sub(self.burned))
    }

    /// Recounts every balance and escrow and checks them against the supply. Always true
    /// unless the ledger has a bug; tests and debug checks call it.
    pub fn is_conserved(&self) -> bool {
        let mut available: u128 = 0;
        let mut escrowed: u128 = 0;
        for account in self.accounts.values() {
            available += u128::from(account.available.0);
            escrowed += u128::from(account.escrowed.0);
        }
        let mut per_order: u128 = 0;
        let mut per_owner: BTreeMap<AgentId, u128> = BTreeMap::new();
        for escrow in self.escrows.values() {
            if Credits::cost(escrow.limit_price, escrow.quantity) != escrow.amount {
                return false;
            }
            per_order += u128::from(escrow.amount.0);
            *per_owner.entry(escrow.owner).or_default() += u128::from(escrow.amount.0);
        }
        let owners_match = self.accounts.iter().all(|(agent, account)| {
            per_owner.get(agent).copied().unwrap_or(0) == u128::from(account.escrowed.0)
        });
        self.burned <= self.minted
            && owners_match
            && per_order == escrowed
            && available + escrowed == u128::from(self.minted - self.burned)
    }

    /// The postings not yet drained, oldest first.
    pub fn postings(&self) -> &[Posting] {
        &self.journal
    }

    /// Takes the journal, oldest first; it keeps its capacity.
    pub fn drain_postings(&mut self) -> std::vec::Drain<'_, Posting> {
        self.journal.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{Resource, Side, Tick};
    use proptest::prelude::*;

    use super::*;

    const A: AgentId = AgentId(1);
    const B: AgentId = AgentId(2);
    const C: AgentId = AgentId(3);

    fn ledger(allowance: u64, cap_epochs: u64) -> Ledger {
        Ledger::new(LedgerConfig {
            allowance_per_epoch: Credits(allowance),
            cap_epochs,
        })
    }

    fn fill(buyer: AgentId, seller: AgentId, order: u64, price: u64, quantity: u64) -> Fill {
        Fill {
            tick: Tick(1),
            resource: Resource::PowerBudgetMw,
            buyer,
            seller,
            buy_order: OrderId(order),
            sell_order: OrderId(1000 + order),
            price: Price(price),
            quantity: Quantity(quantity),
            aggressor: Side::Bid,
        }
    }

    fn available(ledger: &Ledger, agent: AgentId) -> u64 {
        ledger.account(agent).unwrap_or_default().available.0
    }

    #[test]
    fn a_resume_credits_holdings_as_minted_and_stays_conserved() {
        let mut ledger = Ledger::new(LedgerConfig::default());
        ledger.mint_epoch(0, &[(A, 1), (B, 1)]).unwrap();
        let before = ledger.supply();
        let resumed = ledger.resume(&[(A, Credits(700)), (AgentId(9), Credits(5))]);
        assert_eq!(resumed, Ok(Credits(705)));
        assert_eq!(ledger.supply(), Credits(before.0 + 705));
        assert_eq!(ledger.account(AgentId(9)).unwrap().available, Credits(5));
        assert!(ledger.is_conserved());
        let overflow = ledger.resume(&[(A, Credits(u64::MAX - 1)), (B, Credits(9))]);
        assert!(matches!(overflow, Err(LedgerError::SupplyOverflow { .. })));
        assert_eq!(ledger.supply(), Credits(before.0 + 705), "all or nothing");
    }

    #[test]
    fn mint_shares_by_weight_with_deterministic_remainders() {
        let mut ledger = ledger(100, 4);
        let report = ledger.mint_epoch(1, &[(C, 1), (A, 1), (B, 1)]).unwrap();
        // 33 each, and the one left over goes to the lowest id among equal remainders.
        assert_eq!(
            report.allowances,
            vec![(A, Credits(34)), (B, Credits(33)), (C, Credits(33))]
        );
        assert_eq!(ledger.minted(), Credits(100));
        let report = ledger.mint_epoch(2, &[(A, 3), (B, 1)]).unwrap();
        assert_eq!(report.allowances, vec![(A, Credits(75)), (B, Credits(25))]);
        assert!(ledger.is_conserved());
    }

    #[test]
    fn balances_are_capped_at_a_few_epochs_of_allowance() {
        let mut ledger = ledger(100, 2);
        for epoch in 1..=5 {
            ledger.mint_epoch(epoch, &[(A, 1)]).unwrap();
        }
        assert_eq!(available(&ledger, A), 200);
        assert_eq!(ledger.minted(), Credits(500));
        assert_eq!(ledger.burned(), Credits(300));
        // An account with no weight keeps nothing past the next mint.
        ledger.open_account(B);
        ledger
            .escrow(OrderId(1), A, Price(10), Quantity(5))
            .unwrap();
        ledger.settle_fill(&fill(A, B, 1, 10, 5)).unwrap();
        assert_eq!(available(&ledger, B), 50);
        ledger.mint_epoch(6, &[(A, 1)]).unwrap();
        assert_eq!(available(&ledger, B), 0);
        assert!(ledger.is_conserved());
    }

    #[test]
    fn the_cap_counts_escrow_but_burns_only_available() {
        let mut ledger = ledger(100, 1);
        ledger.mint_epoch(1, &[(A, 1)]).unwrap();
        ledger
            .escrow(OrderId(1), A, Price(1), Quantity(80))
            .unwrap();
        let report = ledger.mint_epoch(2, &[(A, 1)]).unwrap();
        // Held: 20 + 100 available, 80 escrowed; cap 100; burn 100 of the available.
        assert_eq!(report.burned, Credits(100));
        assert_eq!(
            ledger.account(A).unwrap(),
            AccountBalance {
                available: Credits(20),
                escrowed: Credits(80),
                allowance: Credits(100)
            }
        );
        assert!(ledger.is_conserved());
    }

    #[test]
    fn mint_rejects_replays_and_duplicates_without_change() {
        let mut ledger = ledger(100, 4);
        ledger.mint_epoch(3, &[(A, 1)]).unwrap();
        let before = ledger.clone();
        assert_eq!(
            ledger.mint_epoch(3, &[(A, 1)]),
            Err(LedgerError::EpochNotAfter { epoch: 3, last: 3 })
        );
        assert_eq!(
            ledger.mint_epoch(4, &[(A, 1), (A, 2)]),
            Err(LedgerError::DuplicateAgent { agent: A })
        );
        assert_eq!(ledger, before);
    }

    #[test]
    fn escrow_needs_the_balance_and_leaves_state_unchanged_otherwise() {
        let mut ledger = ledger(100, 4);
        ledger.mint_epoch(1, &[(A, 1)]).unwrap();
        let before = ledger.clone();
        assert_eq!(
            ledger.escrow(OrderId(1), A, Price(30), Quantity(4)),
            Err(LedgerError::InsufficientBalance {
                agent: A,
                needed: Credits(120),
                available: Credits(100)
            })
        );
        assert_eq!(
            ledger.escrow(OrderId(1), B, Price(1), Quantity(1)),
            Err(LedgerError::InsufficientBalance {
                agent: B,
                needed: Credits(1),
                available: Credits(0)
            })
        );
        assert_eq!(
            ledger.escrow(OrderId(1), A, Price(0), Quantity(1)),
            Err(LedgerError::InvalidAmount {
                price: Price(0),
                quantity: Quantity(1)
            })
        );
        assert_eq!(ledger, before);
        assert_eq!(
            ledger.escrow(OrderId(1), A, Price(25), Quantity(4)),
            Ok(Credits(100))
        );
        assert_eq!(
            ledger.escrow(OrderId(1), A, Price(1), Quantity(1)),
            Err(LedgerError::DuplicateEscrow { order: OrderId(1) })
        );
    }

    #[test]
    fn a_fill_pays_the_seller_and_refunds_the_price_improvement() {
        let mut ledger = ledger(1000, 4);
        ledger.mint_epoch(1, &[(A, 1)]).unwrap();
        ledger
            .escrow(OrderId(7), A, Price(10), Quantity(50))
            .unwrap();
        let settlement = ledger.settle_fill(&fill(A, B, 7, 8, 20)).unwrap();
        assert_eq!(
            settlement,
            FillSettlement {
                paid: Credits(160),
                refunded: Credits(40),
                escrow_left: Credits(300)
            }
        );
        assert_eq!(available(&ledger, A), 500 + 40);
        assert_eq!(available(&ledger, B), 160);
        assert_eq!(
            ledger.escrow_for(OrderId(7)).unwrap().quantity,
            Quantity(30)
        );
        assert_eq!(
            ledger.postings().last(),
            Some(&Posting {
                from: AccountRef::Escrow(OrderId(7)),
                to: AccountRef::Available(A),
                amount: Credits(40)
            })
        );
        // Cancel the rest.
        assert_eq!(ledger.refund_all(OrderId(7)), Ok(Credits(300)));
        assert!(ledger.escrow_for(OrderId(7)).is_none());
        assert_eq!(available(&ledger, A), 840);
        assert!(ledger.is_conserved());
    }

    #[test]
    fn bad_fills_and_refunds_are_typed_and_change_nothing() {
        let mut ledger = ledger(1000, 4);
        ledger.mint_epoch(1, &[(A, 1)]).unwrap();
        ledger
            .escrow(OrderId(7), A, Price(10), Quantity(5))
            .unwrap();
        let before = ledger.clone();
        assert_eq!(
            ledger.settle_fill(&fill(A, B, 8, 10, 1)),
            Err(LedgerError::UnknownEscrow { order: OrderId(8) })
        );
        assert_eq!(
            ledger.settle_fill(&fill(C, B, 7, 10, 1)),
            Err(LedgerError::EscrowOwnerMismatch {
                order: OrderId(7),
                owner: A,
                buyer: C
            })
        );
        assert_eq!(
            ledger.settle_fill(&fill(A, B, 7, 11, 1)),
            Err(LedgerError::FillAboveLimit {
                order: OrderId(7),
                fill_price: Price(11),
                limit_price: Price(10)
            })
        );
        assert_eq!(
            ledger.settle_fill(&fill(A, B, 7, 10, 6)),
            Err(LedgerError::ExceedsEscrow {
                order: OrderId(7),
                quantity: Quantity(6),
                escrowed: Quantity(5)
            })
        );
        assert_eq!(
            ledger.refund(OrderId(7), Quantity(6)),
            Err(LedgerError::ExceedsEscrow {
                order: OrderId(7),
                quantity: Quantity(6),
                escrowed: Quantity(5)
            })
        );
        assert_eq!(ledger, before);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Mint(u64, Vec<(u32, u64)>),
        Escrow(u64, u32, u64, u64),
        Settle(u64, u32, u32, u64, u64),
        Refund(u64, u64),
        RefundAll(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let agent = 0u32..4;
        let order = 0u64..6;
        prop_oneof![
            (
                0u64..4,
                prop::collection::vec((agent.clone(), 0u64..5), 0..4)
            )
                .prop_map(|(step, weights)| Op::Mint(step, weights)),
            (order.clone(), agent.clone(), 0u64..40, 0u64..20)
                .prop_map(|(o, a, p, q)| Op::Escrow(o, a, p, q)),
            (order.clone(), agent.clone(), agent, 0u64..45, 0u64..25)
                .prop_map(|(o, b, s, p, q)| Op::Settle(o, b, s, p, q)),
            (order.clone(), 0u64..25).prop_map(|(o, q)| Op::Refund(o, q)),
            order.prop_map(Op::RefundAll),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn credits_are_conserved_and_failures_change_nothing(
            allowance in 0u64..1000,
            cap_epochs in 0u64..4,
            ops in prop::collection::vec(op(), 1..60),
        ) {
            let mut ledger = ledger(allowance, cap_epochs);
            let mut epoch = 0;
            for op in ops {
                let before = ledger.clone();
                let result = match op {
                    Op::Mint(step, weights) => {
                        epoch += step;
                        let weights: Vec<_> =
                            weights.into_iter().map(|(a, w)| (AgentId(a), w)).collect();
                        ledger.mint_epoch(epoch, &weights).map(drop)
                    }
                    Op::Escrow(o, a, p, q) => ledger
                        .escrow(OrderId(o), AgentId(a), Price(p), Quantity(q))
                        .map(drop),
                    Op::Settle(o, b, s, p, q) => ledger
                        .settle_fill(&fill(AgentId(b), AgentId(s), o, p, q))
                        .map(drop),
                    Op::Refund(o, q) => ledger.refund(OrderId(o), Quantity(q)).map(drop),
                    Op::RefundAll(o) => ledger.refund_all(OrderId(o)).map(drop),
                };
                if result.is_err() {
                    prop_assert_eq!(&ledger, &before);
                }
                prop_assert!(ledger.is_conserved());
                // Replaying the journal from empty gives the same circulation.
                let mut in_circulation: i128 = 0;
                for posting in ledger.postings() {
                    let amount = i128::from(posting.amount.0);
                    prop_assert!(amount > 0);
                    match (posting.from, posting.to) {
                        (AccountRef::Mint, _) => in_circulation += amount,
                        (_, AccountRef::Burn) => in_circulation -= amount,
                        _ => {}
                    }
                }
                prop_assert_eq!(in_circulation, i128::from(ledger.supply().0));
            }
        }
    }
}
