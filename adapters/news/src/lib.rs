//! News feeds: fetching RSS 2.0 and Atom documents and reading their items.
