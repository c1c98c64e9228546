"""The words BM25 leaves out: French and English function words.

They occur in nearly every passage, so they barely move a BM25 score, yet each query word
walks its whole posting list: on Milvus Lite, whose BM25 runs in Python, "le", "de" and "la"
in a question made a search scan most of the corpus. The seeds' users write French and
English, hence both lists. Elided forms ("l'", "d'", "qu'") are here too: the tokenizer splits
"l'imprimante" into "l" and "imprimante".

The lists feed the collection's analyzer, which Milvus applies to stored text and to queries
alike; a collection keeps the analyzer it was created with.
"""

from __future__ import annotations

FRENCH = (
    "a à afin ai aie aient aies ait alors as au aucun aucune auquel aussi autre autres aux auxquelles "
    "auxquels avaient avais avait avant avec avez aviez avions avoir avons ayant ayez ayons c ça car ce "
    "ceci cela celle celles celui cependant certain certaine certaines certains ces cet cette ceux chaque "
    "ci comme comment d dans de des donc dont du elle elles en encore entre es est et étaient étais était "
    "étant été êtes étiez étions être eu eue eues eûmes eurent eus eut eux fut fûmes "
    "furent fus ici il ils j je jusqu l la laquelle le lequel les lesquelles lesquels leur leurs lors lui "
    "m ma mais me même mêmes mes moi mon n ne ni nos notre nous on ont or ou où par parce pas "
    "plus pour pourquoi puis qu quand que quel quelle quelles quels qui quoi s sa sans se sera serai "
    "seraient serais serait seras serez seriez serions serons seront ses si sien sienne siennes siens "
    "soi soient sois soit sommes son sont sous soyez soyons suis sur t ta te tes toi ton tous tout toute "
    "toutes très tu un une unes uns vers voici voilà vos votre vous y"
)
ENGLISH = (
    "about above after again against all am an and any are as at be because been before being below "
    "between both but by can could did do does doing down during each few for from further had has have "
    "having he her here hers herself him himself his how i if in into is it its itself just me more most "
    "my myself no nor not now of off on once only or other our ours ourselves out over own same she "
    "should so some such than that the their theirs them themselves then there these they this those "
    "through to too under until up very was we were what when where which while who whom why will with "
    "would you your yours yourself yourselves"
)
STOP_WORDS = sorted(set(FRENCH.split()) | set(ENGLISH.split()))

# Milvus' analyzer: its standard tokenizer, lower case, then these stop words. Milvus Lite
# tokenizes on \w+ and lowercases on its own, and reads the same stop filter.
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": STOP_WORDS}]}
